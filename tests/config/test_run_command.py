"""`make run`'s supervisor on a fresh var folder: site, admin and health answer, Ctrl-C leaves nothing behind,
and a second start reuses the data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class Supervisor:
    def __init__(self, var_dir: Path, port: int):
        self.port = port
        self.lines: list[str] = []
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "LOOKBOOK_VAR_DIR": str(var_dir),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "config.run", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}; output:\n{self.output()[-5000:]}")

    def healthy(self) -> bool:
        try:
            status, _ = _get(f"http://127.0.0.1:{self.port}/healthz")
        except OSError:
            return False
        return status == 200

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def interrupt(self) -> int:
        os.kill(self.proc.pid, signal.SIGINT)  # what Ctrl-C delivers to the foreground process
        return self.proc.wait(60)


def _our_servers(var_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(var_dir) in cmdline:
            found.append(proc)
    return found


def test_run_starts_everything_stops_cleanly_and_keeps_data(tmp_path):
    var_dir = tmp_path / "var"
    port = _free_port()

    first = Supervisor(var_dir, port)
    try:
        first.wait_for(first.healthy, 180, "/healthz 200")
        for path in ("/", "/admin/login/"):
            status, _ = _get(f"http://127.0.0.1:{port}{path}")
            assert status == 200, path
        body = json.loads(_get(f"http://127.0.0.1:{port}/healthz")[1])
        assert body["checks"]["workers"]["ok"] is True
        assert len(body["checks"]["workers"]["workers"]) == 3  # queries, training, the rest
        first.wait_for(lambda: "beat: Starting" in first.output(), 60, "beat ready")
        assert first.output().count("ready.") >= 3, "the three workers log that they are ready"

        created = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django.contrib.auth.models import User; User.objects.create_user('keeper', password='x')",
            ],
            cwd=ROOT,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        children = first.descendants()
        assert len(children) >= 4
    finally:
        code = first.interrupt()
    assert code == 0, first.output()[-3000:]
    time.sleep(1)
    assert [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert _our_servers(var_dir) == [], "embedded PostgreSQL/Redis must stop with Ctrl-C"

    second = Supervisor(var_dir, port)
    started = time.monotonic()
    try:
        second.wait_for(second.healthy, 120, "/healthz 200 on the second start")
        restart_seconds = time.monotonic() - started
        kept = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from django.contrib.auth.models import User; print(User.objects.filter(username='keeper').count())",
            ],
            cwd=ROOT,
            env=second.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert kept.stdout.strip().splitlines()[-1] == "1"
    finally:
        assert second.interrupt() == 0
    assert restart_seconds < 60, f"second start took {restart_seconds:.0f}s"
    assert _our_servers(var_dir) == []


def _program(supervisor: Supervisor, name: str) -> psutil.Process:
    """The main process of one supervised program (its parent is supervisord)."""
    markers = {"web": "runserver", "worker": "-n main@", "queries": "-n queries@", "beat": " beat "}
    for proc in supervisor.descendants():
        try:
            if markers[name] in " ".join(proc.cmdline()) and "supervisord" in " ".join(proc.parent().cmdline()):
                return proc
        except psutil.NoSuchProcess:
            continue
    raise AssertionError(f"no {name} process; output:\n{supervisor.output()[-3000:]}")


def _kill_and_see_restarted(stack: Supervisor, name: str) -> None:
    old = _program(stack, name)
    os.killpg(old.pid, signal.SIGKILL)  # the process and its pool children, as the OOM killer might
    exited = f"exited: {name} (terminated by SIGKILL; not expected)"
    stack.wait_for(lambda: exited in stack.output(), 30, f"supervisord to log the death of {name}")
    respawned = f"spawned: '{name}' with pid"
    stack.wait_for(lambda: respawned in stack.output().split(exited, 1)[1], 30, f"{name} to be started again")
    assert _program(stack, name).pid != old.pid
    assert not old.is_running() or old.status() == psutil.STATUS_ZOMBIE


def test_a_killed_worker_beat_or_web_process_is_restarted_and_logged_and_ctrl_c_still_stops_all(tmp_path):
    var_dir = tmp_path / "var"
    port = _free_port()
    stack = Supervisor(var_dir, port)
    try:
        stack.wait_for(stack.healthy, 180, "/healthz 200")
        for name in ("worker", "beat", "web"):
            _kill_and_see_restarted(stack, name)
        # The restarted worker consumes its queues again, and the restarted web server answers.
        stack.wait_for(stack.healthy, 120, "/healthz 200 after the restarts")
        queues = json.loads(_get(f"http://127.0.0.1:{port}/healthz")[1])["checks"]["workers"]["queues"]
        assert all(consumers for consumers in queues.values()), queues
        assert (var_dir / "log" / "worker.log").read_text(errors="replace").count("ready.") >= 2
        children = stack.descendants()
    finally:
        code = stack.interrupt()
    assert code == 0, stack.output()[-3000:]
    time.sleep(1)
    assert [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    assert _our_servers(var_dir) == [], "embedded PostgreSQL/Redis must stop with Ctrl-C"
