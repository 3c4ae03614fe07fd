"""`make run`: the whole local stack in one terminal.

Starts the embedded PostgreSQL and Redis (unless DATABASE_URL / CELERY_BROKER_URL point at real
servers), applies migrations, then hands the web server, a Celery worker for shopper queries, a
Celery worker for embedding/training and Celery beat (config.processes) to supervisord, which
restarts any of them that dies and logs it. Their output is shown prefixed by name and kept in
var/log/. Ctrl-C (or SIGTERM) stops supervisord, which stops every process it started, children
included; then the embedded servers stop. Data in var/ is kept.

    python -m config.run [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from config import devservices, env, processes

ROOT = env.BASE_DIR


def _say(message: str) -> None:
    print(f"{'lookbook':>8} | {message}", flush=True)


def _pump(stream, prefix: str) -> None:
    for raw in iter(stream.readline, b""):
        print(prefix + raw.decode("utf-8", "replace").rstrip("\n"), flush=True)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop_supervisor(proc: subprocess.Popen, known: list[psutil.Process], grace: float = 60.0) -> None:
    """SIGTERM to supervisord (it stops its programs, each within its stopwaitsecs); anything still
    alive afterwards (supervisord itself killed, say) is killed with its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for child in known:
        try:
            if child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                child.kill()
        except psutil.NoSuchProcess:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=env.get("LOOKBOOK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env.get_int("LOOKBOOK_PORT", 8000))
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["PYTHONUNBUFFERED"] = "1"
    # Children must not start services themselves: this process owns them.
    child_env = {**os.environ, "LOOKBOOK_NO_DEVSERVICES": "1"}

    embedded = devservices.embedded_database() or devservices.embedded_broker()
    if embedded:
        _say(f"starting embedded services in {env.var_dir()} ...")
    devservices.ensure_started()

    _say("applying migrations ...")
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=child_env, cwd=ROOT)
    if migrate.returncode != 0:
        _say("migrations failed; stopping")
        if embedded:
            devservices.stop_all()
        return migrate.returncode

    var = env.var_dir()
    run_dir, log_dir = var / "run", var / "log"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = processes.processes(host=args.host, port=args.port, schedule=var / "celerybeat-schedule")
    conf = run_dir / "supervisord.conf"
    conf.write_text(
        processes.supervisor_config(procs, run_dir=run_dir, log_dir=log_dir, cwd=ROOT, colour=sys.stdout.isatty())
    )

    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    exit_code = 0
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,  # supervisord's own log: spawns, exits, restarts
        stderr=subprocess.PIPE,  # the programs' output, prefixed by the log listener
        start_new_session=True,  # Ctrl-C reaches this process only; it stops supervisord in order
    )
    readers = [
        threading.Thread(target=_pump, args=(supervisor.stdout, f"{'supervisor':>8} | "), daemon=True),
        threading.Thread(target=_pump, args=(supervisor.stderr, ""), daemon=True),
    ]
    for reader in readers:
        reader.start()
    known: list[psutil.Process] = []
    try:
        _say(f"Lookbook is running at http://{args.host}:{args.port}/  (admin: http://{args.host}:{args.port}/admin/)")
        _say(f"processes: {', '.join(p.name for p in procs)}; restarted when they die; logs in {log_dir}")
        _say("create a staff login with `make superuser`; press Ctrl-C to stop everything")
        while not stopping.wait(1.0):
            if supervisor.poll() is not None:
                _say(f"supervisord exited with code {supervisor.returncode}; stopping the rest")
                exit_code = 1
                break
            # Remembered so that, should supervisord itself die, its orphans are still found.
            known = _descendants(supervisor.pid) or known
    finally:
        _say("stopping ...")
        _stop_supervisor(supervisor, known)
        for reader in readers:
            reader.join(timeout=5)
        if embedded:
            devservices.stop_all()
        _say("stopped; data kept in " + str(Path(var)))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
