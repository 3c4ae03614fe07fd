"""One real Celery worker (embedding + queries queues) for the throughput and upload measurements."""

from __future__ import annotations

import socket
import sys
import time
import uuid

from bench import env
from bench.context import Context
from workers import registry


def start_worker(ctx: Context) -> tuple[env.Process, str]:
    """``celery -A workers worker -c 1`` on both queues; returns once it answers a ping."""
    name = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    queues = f"{registry.EMBEDDING},{registry.QUERIES}"
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues, "-n", name]
    options = ["-c", "1", "-l", "WARNING", "--without-gossip", "--without-mingle"]
    worker = env.Process("celery-worker", [*command, *options], cwd=ctx.root, log_dir=ctx.work_dir / "logs")
    _wait_for_worker(worker, name)
    return worker, name


def _wait_for_worker(worker: env.Process, name: str, timeout: float = 240) -> None:
    from workers.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"the Celery worker exited:\n{worker.tail()}")
        if app.control.ping(destination=[name], timeout=1):
            return
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f}s:\n{worker.tail()}")
