"""Progress printing shared by the model_* commands."""

from __future__ import annotations

import time


def printer(stdout, label: str):
    """A ``progress(done, total, message)`` callback that prints at most once a second."""
    last = [0.0]

    def progress(done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done >= total:
            last[0] = now
            stdout.write(f"{label}: {done}/{total} {message}".rstrip())

    return progress
