"""Celery tasks. Tasks take ids, import heavy modules in their bodies, and are idempotent."""

from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="workers.echo")
def echo(payload: dict) -> dict:
    """Round-trip check used by health checks and integration tests: returns the payload and who ran it."""
    return {"payload": payload, "hostname": socket.gethostname(), "pid": os.getpid()}
