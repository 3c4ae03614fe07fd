"""`make run`: the whole local stack in one terminal.

Starts the embedded PostgreSQL and Redis (unless DATABASE_URL / CELERY_BROKER_URL
point at real servers), applies migrations, then runs the web server, a Celery
worker for shopper queries, a Celery worker for embedding/training, and Celery
beat, with their output prefixed by name. Ctrl-C (or SIGTERM) stops every process
it started, children included, and the embedded servers; data in var/ is kept.

    python -m config.run [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from config import devservices, env

ROOT = env.BASE_DIR
COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
RESET = "\033[0m"


@dataclass
class Child:
    name: str
    argv: list[str]
    colour: str
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def _pump(child: Child, out_lock: threading.Lock, use_colour: bool) -> None:
    assert child.proc and child.proc.stdout
    prefix = f"{child.colour}{child.name:>8} |{RESET} " if use_colour else f"{child.name:>8} | "
    for raw in iter(child.proc.stdout.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        with out_lock:
            print(prefix + line, flush=True)


def _say(message: str) -> None:
    print(f"{'lookbook':>8} | {message}", flush=True)


def _stop_children(children: list[Child], grace: float = 15.0) -> None:
    for child in children:
        if child.proc and child.proc.poll() is None:
            try:
                os.killpg(child.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child in children:
        if not child.proc:
            continue
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.proc.wait(remaining)
        except subprocess.TimeoutExpired:
            pass
        # The whole group goes, so no pool child or reloader survives its parent.
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if child.reader:
            child.reader.join(timeout=2)


def build_children(host: str, port: int) -> list[Child]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "workers"]
    specs = [
        ("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]),
        ("queries", [*celery, "worker", "-Q", "queries", "-n", "queries@%h", "-c", "1", "-l", "INFO"]),
        (
            "worker",
            [*celery, "worker", "-Q", "default,embedding,training", "-n", "main@%h", "-c", "1", "-l", "INFO"],
        ),
        ("beat", [*celery, "beat", "-l", "INFO", "--schedule", str(env.var_dir() / "celerybeat-schedule")]),
    ]
    return [Child(name, argv, COLOURS[i % len(COLOURS)]) for i, (name, argv) in enumerate(specs)]


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

    children = build_children(args.host, args.port)
    out_lock = threading.Lock()
    use_colour = sys.stdout.isatty()
    stopping = threading.Event()

    def on_signal(signum, _frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    exit_code = 0
    try:
        for child in children:
            child.proc = subprocess.Popen(
                child.argv,
                cwd=ROOT,
                env=child_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, signalled by us only
            )
            child.reader = threading.Thread(target=_pump, args=(child, out_lock, use_colour), daemon=True)
            child.reader.start()
        _say(f"Lookbook is running at http://{args.host}:{args.port}/  (admin: http://{args.host}:{args.port}/admin/)")
        _say("create a staff login with `make superuser`; press Ctrl-C to stop everything")
        while not stopping.wait(0.5):
            dead = [c for c in children if c.proc and c.proc.poll() is not None]
            if dead:
                _say(f"{dead[0].name} exited with code {dead[0].proc.returncode}; stopping the rest")
                exit_code = 1
                break
    finally:
        _say("stopping ...")
        _stop_children(children)
        if embedded:
            devservices.stop_all()
        _say("stopped; data kept in " + str(Path(env.var_dir())))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
