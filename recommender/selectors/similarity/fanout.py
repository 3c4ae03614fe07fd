"""Helper database connections that take a share of a search's probes (``RECOMMENDER_PROBE_CONNECTIONS``).

Snapshot -> items asks the item graph once per query region (16 probes). PostgreSQL runs one
statement on one core and will not spread those probes over parallel workers (a subquery with
``LIMIT`` is never parallel-safe), so on an otherwise idle machine one core waits while the
other walks 16 graphs. Splitting the regions over connections cuts the latency by the number
of connections at no extra work: the probes are the same, each connection ranks its share, and
the shares are merged (exact: an item's best region is in exactly one share, where it ranks
as it would overall). Under full load nothing is gained, and little is lost.

Each helper is one thread holding its own Django connection (Django connections belong to a
thread), kept open between searches. A helper that is busy (a threaded server answering two
searches at once) is not waited for: the caller runs that share itself. A helper whose
statement fails closes its connection (the next use reconnects) and the caller reruns the share.

The helpers see committed rows only, so the selectors split a search only when the caller is
not inside a transaction of its own, atomic or with autocommit off (it may hold rows no other
connection can see).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connection


class _Helper:
    def __init__(self, number: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lookbook-probes-{number}")
        self.busy = threading.Lock()

    def submit(self, fn: Callable, *args) -> Future | None:
        if not self.busy.acquire(blocking=False):
            return None
        try:
            future = self.pool.submit(_guarded, fn, *args)
        except RuntimeError:  # the interpreter is shutting down
            self.busy.release()
            return None
        future.add_done_callback(lambda _: self.busy.release())
        return future


def _guarded(fn: Callable, *args):
    try:
        return fn(*args)
    except Exception:
        # The statement failed (the database restarted, say): this thread's connection may be
        # unusable, so drop it; the next search on this helper connects afresh.
        connection.close()
        raise


_lock = threading.Lock()
_helpers: list[_Helper] = []
_pid: int | None = None


def helpers_wanted() -> int:
    """How many helper connections the setting asks for (connections minus the caller's own)."""
    return max(0, int(settings.RECOMMENDER_PROBE_CONNECTIONS) - 1)


def submit_all(fn: Callable, shares: list[tuple]) -> list[Future | None]:
    """Start ``fn(*share)`` for each share on its own free helper; None where no helper is free."""
    global _pid
    with _lock:
        if _pid != os.getpid():  # a forked process (a pre-forking server) must not reuse its parent's threads
            _helpers.clear()
            _pid = os.getpid()
        while len(_helpers) < len(shares):
            _helpers.append(_Helper(len(_helpers) + 1))
        helpers = _helpers[: len(shares)]
    return [helper.submit(fn, *share) for helper, share in zip(helpers, shares, strict=True)]


def close_helpers(timeout: float = 10.0) -> None:
    """Close every helper's database connection (tests, before the test database is dropped)."""
    with _lock:
        helpers = list(_helpers) if _pid == os.getpid() else []
    for helper in helpers:
        with helper.busy:
            helper.pool.submit(_close_connection).result(timeout=timeout)


def _close_connection() -> None:
    connection.close()  # the calling thread's connection: run on the helper's own thread
