"""Running a :class:`.planner.SearchPlan`: the cursor, the session settings, the grouped statement, the
stream, the shares on helper connections, and the exact re-run when a walk ends short."""

from __future__ import annotations

import logging
import time
import weakref
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection, transaction
from pgvector.psycopg import register_vector

from recommender.selectors.similarity import fanout
from recommender.selectors.similarity.planner import SearchPlan, Strategy
from recommender.selectors.similarity.rows import Hit, RowReader
from recommender.selectors.similarity.sql import search_sql
from recommender.selectors.similarity.types import Query

logger = logging.getLogger(__name__)

STREAM_ROWS_FIRST = 3  # item -> snapshots: region rows per wanted snapshot in the stream's first batch
_REGISTERED: weakref.WeakSet = weakref.WeakSet()


@contextmanager
def vector_cursor(name: str | None = None):
    """A cursor for the similarity statements, on Django's connection and inside its transaction.

    It is psycopg's own cursor (server-side parameter binding) rather than Django's client-side
    binding one, so query descriptors travel as binary float32 (pgvector-python's dumpers)
    instead of decimal text. Errors are Django's ``DatabaseError`` family, as with
    ``connection.cursor()``. With a ``name`` it is a server-side (named) cursor, for a statement
    read only as far as needed; it lives until closed here or the transaction ends, so it needs one.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        if raw not in _REGISTERED:
            register_vector(raw)  # once per connection: vector, halfvec, ... and their arrays
            _REGISTERED.add(raw)
        # Django gives its connections a client-side binding cursor factory: ask for the plain one.
        with psycopg.ServerCursor(raw, name) if name else psycopg.Cursor(raw) as cursor:
            yield _LoggedCursor(cursor)


class _LoggedCursor:
    """Records statements in ``connection.queries`` like Django's own cursors do (DEBUG, query-count
    tests); Django's debug cursor re-composes each statement client-side, which binary parameters defeat."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params=None):
        if not connection.queries_logged:
            return self._cursor.execute(sql, params)
        started = time.monotonic()
        try:
            return self._cursor.execute(sql, params)
        finally:
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})

    def __getattr__(self, name):
        return getattr(self._cursor, name)


def settings_apply(cursor, values: dict[str, str]) -> None:
    """Session settings for this transaction only (``set_config(..., true)``: SET LOCAL), one round trip."""
    calls = ", ".join("set_config(%s, %s, true)" for _ in values)
    cursor.execute(f"SELECT {calls}", [part for pair in values.items() for part in pair])


def grouped_run(cursor, query: Query, plan: SearchPlan, *, exact: bool, hydrate: bool) -> list[Hit]:
    """The grouped statement; hits best first, with their catalog rows when ``hydrate``."""
    per_probe = plan.probe_rows * (1 if exact else plan.candidate_factor)
    sql, params = search_sql(query, per_probe=per_probe, exact=exact)
    if not hydrate:
        cursor.execute(sql, params)
        return [(int(r[0]), float(r[1]), None) for r in cursor.fetchall()]
    reader = RowReader.of(query.kind)
    cursor.execute(reader.wrap(sql), params)
    return reader.hits(cursor.fetchall())


def stream_run(query: Query, plan: SearchPlan) -> list[Hit]:
    """Item -> snapshots: read region rows nearest first until they name k distinct snapshots.

    The ungrouped statement through a server-side cursor (one statement, fetched in growing
    batches), inside the caller's transaction. Under ``relaxed_order`` the iterative scan may hand
    a row over a little late, so reading goes on to ``candidate_factor`` times the rows it took to
    see k snapshots. Hits carry no catalog row.
    """
    k, cap = query.k, plan.probe_rows
    sql, params = search_sql(query, per_probe=cap, streamed=True)
    best: dict[int, float] = {}
    fetched, stop_at, size = 0, None, k * STREAM_ROWS_FIRST
    with vector_cursor("lookbook_nearest_snapshots") as cursor:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(size)
            for target_id, dist in batch:
                target_id, dist = int(target_id), float(dist)
                if dist < best.get(target_id, float("inf")):
                    best[target_id] = dist
            fetched += len(batch)
            if len(batch) < size:
                break  # the walk is over: every row it could give has been read
            if stop_at is None and len(best) >= k:
                stop_at = fetched * plan.candidate_factor
            if stop_at is not None and fetched >= stop_at:
                break
            size = min(size * 2, cap)
    return [(t, d, None) for t, d in sorted(best.items(), key=lambda pair: (pair[1], pair[0]))[:k]]


def _share_elsewhere(share: Query, plan: SearchPlan, hydrate: bool) -> list[Hit]:
    """One share of a search on a helper's connection: the same settings, its own short transaction."""
    with transaction.atomic(), vector_cursor() as cursor:
        settings_apply(cursor, plan.session_settings)
        return grouped_run(cursor, share, plan, exact=False, hydrate=hydrate)


def shared_run(cursor, query: Query, plan: SearchPlan, *, hydrate: bool) -> list[Hit]:
    """The grouped statement over each share, the first here and the others on helper connections
    at the same time, merged into the top k. A helper that is busy or fails leaves its share to
    this connection (a failure is logged)."""
    shares = plan.shares
    futures = fanout.submit_all(_share_elsewhere, [(share, plan, hydrate) for share in shares[1:]])
    parts = [grouped_run(cursor, shares[0], plan, exact=False, hydrate=hydrate)]
    for share, future in zip(shares[1:], futures, strict=True):
        hits = None
        if future is not None:
            try:
                hits = future.result(timeout=settings.RECOMMENDER_QUERY_TIMEOUT_S)
            except Exception:
                logger.warning("a helper connection failed its share of a search; running it here", exc_info=True)
        parts.append(hits if hits is not None else grouped_run(cursor, share, plan, exact=False, hydrate=hydrate))
    best: dict[int, tuple[float, object]] = {}
    for hits in parts:
        for target_id, dist, obj in hits:
            if target_id not in best or dist < best[target_id][0]:
                best[target_id] = (dist, obj)  # every share reads rows, or none does (same hydrate)
    merged = sorted(((t, d, o) for t, (d, o) in best.items()), key=lambda hit: (hit[1], hit[0]))
    return merged[: query.k]


def plan_run(cursor, query: Query, plan: SearchPlan, *, hydrate: bool) -> list[Hit]:
    """Run ``plan`` on ``cursor`` (inside the caller's transaction), with the exact re-run when the
    graph walk ends early (a selective filter beyond ``hnsw.max_scan_tuples``, or few rows)."""
    settings_apply(cursor, plan.session_settings)
    if plan.strategy is Strategy.STREAM:
        hits = stream_run(query, plan)
    elif plan.strategy is Strategy.SHARED:
        hits = shared_run(cursor, query, plan, hydrate=hydrate)
    else:
        hits = grouped_run(cursor, query, plan, exact=plan.strategy is Strategy.EXACT, hydrate=hydrate)
    if len(hits) < query.k and plan.exact_fallback:
        settings_apply(cursor, {"enable_sort": "on"})
        hits = grouped_run(cursor, query, plan, exact=True, hydrate=hydrate)
    return hits
