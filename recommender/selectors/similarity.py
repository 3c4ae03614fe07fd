"""Nearest neighbours on pgvector: snapshot -> items and item -> snapshots.

Scoring (the ml contract): score(snapshot, item) = max over the snapshot's region vectors
of cosine(region, item). Both directions run as ONE SQL statement over the active model
version's rows only:

- one HNSW probe per query vector (a LATERAL subquery ordered by the same
  ``vector::halfvec(dim) <=> q`` expression as the version's partial index, with the
  literal ``model_version_id`` so the partial index matches), the shopper's filters
  applied inside the probe;
- then ``GROUP BY`` the target (item or snapshot) with the minimum distance, so a
  snapshot counts once, by its best region.

Each probe fetches enough candidates to be exact: snapshot -> items needs k per region
(an item missing from its best region's top k has k better items ahead of it); item ->
snapshots reads its one probe's region rows as a stream, nearest first, through a
server-side cursor, and stops as soon as they name k distinct snapshots (any other
snapshot's best region ranks below them), so the graph is walked only as far as the
answer needs; k * max_regions rows always name k snapshots. ``hnsw.iterative_scan`` keeps the graph walk
going until the filtered probe has its rows (the default walk stops after ef_search
candidates and silently returns fewer under a selective filter); if the walk still ends
short (``hnsw.max_scan_tuples``), the same statement is re-run as an exact scan. With
filters, a capped count first decides: fewer than ``RECOMMENDER_EXACT_BELOW_ROWS``
matching vector rows are ranked by an exact scan straight away (cheaper than walking the
graph, and exact); more, by the graph walk. A one-style filter is also written as the
predicate of that style's own partial index (``recommender.indexes``), so when the style
has one the planner walks a graph of its rows only instead of filtering the whole graph.

The grouped statement also reads each result's catalog row (an item with its brand and
category), so a recommendation is one statement after the settings. Outside a caller's
transaction, a search with several query vectors (snapshot -> items) splits them over
``RECOMMENDER_PROBE_CONNECTIONS`` connections that run the same statement on their share at
the same time (``recommender.selectors.fanout``); the shares' top k are merged, exactly.
"""

from __future__ import annotations

import logging
import struct
import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, transaction
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types import TypeInfo

from catalog.models import Item, ItemEmbedding, Snapshot, SnapshotEmbedding
from recommender.indexes import INDEX_VALID_SQL, TARGETS, index_precision, style_clause, style_index_name
from recommender.models import ModelVersion
from recommender.selectors import fanout
from recommender.selectors.filters import Filters

logger = logging.getLogger(__name__)

Kind = Literal["item", "snapshot"]
ITERATIVE_SCAN_MODES = ("off", "relaxed_order", "strict_order")
SNAPSHOT_ROWS_FIRST = 3  # item -> snapshots: region rows per wanted snapshot in the stream's first batch


class RecommendationUnavailable(Exception):
    """Recommendations cannot be computed right now; ``message`` is safe to show to shoppers."""

    message = "Recommendations are not available right now."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class NoActiveModel(RecommendationUnavailable):
    message = "No recommendation model is active yet. Please come back a little later."


class NotEmbedded(RecommendationUnavailable):
    message = "This image has not been analysed yet, so there are no recommendations for it. Please check back soon."


@dataclass(frozen=True)
class ItemMatch:
    item: Item
    distance: float

    @property
    def score(self) -> float:
        """Cosine similarity (1 - cosine distance)."""
        return 1.0 - self.distance


@dataclass(frozen=True)
class SnapshotMatch:
    snapshot: Snapshot
    distance: float

    @property
    def score(self) -> float:
        """Cosine similarity of the snapshot's best-matching region."""
        return 1.0 - self.distance


@dataclass(frozen=True)
class SearchOptions:
    """Knobs of one search; defaults come from settings (``RECOMMENDER_*``)."""

    ef_search: int  # snapshot -> items: the walk of each region probe
    iterative_scan: str
    max_scan_tuples: int
    exact_below_rows: int = 0
    exact_fallback: bool = True
    ef_search_snapshots: int = 200  # item -> snapshots: the walk of the one probe
    # Either walk on a style's own graph (a one-style filter): ef_search times this.
    ef_search_style_factor: float = 1.0

    @classmethod
    def from_settings(cls, **overrides) -> SearchOptions:
        values = {
            "ef_search": settings.RECOMMENDER_EF_SEARCH,
            "ef_search_snapshots": settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS,
            "ef_search_style_factor": settings.RECOMMENDER_EF_SEARCH_STYLE_FACTOR,
            "iterative_scan": settings.RECOMMENDER_ITERATIVE_SCAN,
            "max_scan_tuples": settings.RECOMMENDER_MAX_SCAN_TUPLES,
            "exact_below_rows": settings.RECOMMENDER_EXACT_BELOW_ROWS,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        if values["iterative_scan"] not in ITERATIVE_SCAN_MODES:
            raise ValueError(f"iterative_scan must be one of {ITERATIVE_SCAN_MODES}")
        return cls(**values)


def model_version_active() -> ModelVersion | None:
    """The version that serves shoppers, or None (one query)."""
    return ModelVersion.objects.active().only("id", "dim", "max_regions", "name", "config").first()


def query_region_rows(model_version: ModelVersion) -> list[int] | None:
    """Which of a snapshot's stored regions query the item index (``RECOMMENDER_SNAPSHOT_QUERY_REGIONS``).

    None means all of them: the setting is empty, or the version's region scheme does not
    contain the configured one (e.g. a one-region model), so nothing would be gained.
    """
    scheme = settings.RECOMMENDER_SNAPSHOT_QUERY_REGIONS
    stored = (model_version.config or {}).get("regions")
    if not scheme or not stored or scheme == stored:
        return None
    from ml.regions import subset_rows  # numpy only: the web process never imports TensorFlow

    try:
        rows = subset_rows(scheme, of=stored)
    except ValueError:
        return None
    return rows if len(rows) < int(model_version.max_regions or 1) else None


def _require_active(model_version: ModelVersion | None) -> ModelVersion:
    version = model_version if model_version is not None else model_version_active()
    if version is None or not version.dim:
        raise NoActiveModel()
    return version


class _QueryVector:
    """A float32 query descriptor, sent to PostgreSQL in pgvector's binary format (see :func:`vector_cursor`)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


class _QueryVectorDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: _QueryVector) -> bytes:
        # pgvector's vector_recv: int16 dimensions, int16 unused, then big-endian float4 values
        return struct.pack(">HH", obj.array.shape[0], 0) + obj.array.astype(">f4").tobytes()


_ADAPTED: weakref.WeakSet = weakref.WeakSet()


def _adapt_vectors(raw) -> None:
    """Teach one psycopg connection to send :class:`_QueryVector` (and lists of them) as ``vector``."""
    if raw in _ADAPTED:
        return
    info = TypeInfo.fetch(raw, "vector")
    if info is None:
        raise RuntimeError("the pgvector extension is not installed in this database (run the migrations)")
    info.register(raw)  # also registers vector[] so a list of query vectors is one array parameter
    raw.adapters.register_dumper(_QueryVector, type("QueryVectorDumper", (_QueryVectorDumper,), {"oid": info.oid}))
    _ADAPTED.add(raw)


@contextmanager
def vector_cursor(name: str | None = None):
    """A cursor for the similarity statements, on Django's connection and inside its transaction.

    It is psycopg's own cursor (server-side parameter binding) rather than Django's client-side
    binding one, so query descriptors travel as binary float32 instead of decimal text: for a
    32-region upload that is 32k numbers, about 50 ms of formatting in Python, and as much
    parsing in PostgreSQL. Errors are Django's ``DatabaseError`` family, as with ``connection.cursor()``.
    With a ``name`` it is a server-side (named) cursor, for a statement read only as far as
    needed; it lives until closed here or the transaction ends, so it needs one.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        _adapt_vectors(raw)
        # Django gives its connections a client-side binding cursor factory: ask for the plain one.
        with (psycopg.ServerCursor(raw, name) if name else psycopg.Cursor(raw)) as cursor:
            yield _LoggedCursor(cursor)


class _LoggedCursor:
    """Records statements in ``connection.queries`` like Django's own cursors do (DEBUG, query-count tests)."""

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


def _query_vectors_param(vectors: Sequence[Sequence[float]]) -> list[_QueryVector]:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError("query vectors must be a 2-d sequence (n, dim)")
    if not np.all(np.isfinite(array)):
        raise ValueError("query vector has non-finite values")
    return [_QueryVector(row) for row in array]


def _filter_sql(
    kind: Kind, filters: Filters, exclude_ids: Sequence[int], *, style_column: bool = True
) -> tuple[list[str], list]:
    """WHERE clauses (on alias ``e``) restricting embedding rows to the filtered targets.

    ``style_column=False`` leaves out the rows' style column (counting through the link
    tables alone needs no embedding row read).
    """
    clauses: list[str] = []
    params: list = []
    if filters.style_ids and style_column:
        # The row's own copy of its owner's styles (kept by the database), written exactly like a
        # per-style partial index's predicate so the planner can walk that style's graph only
        # (recommender.indexes). The EXISTS below says the same through the link table: it lets
        # the planner start from the style's rows when it scans exactly.
        clauses.append(style_clause(filters.style_ids, "e"))
    if kind == "item":
        fk = "e.item_id"
        if filters.style_ids:
            clauses.append(
                f"EXISTS (SELECT 1 FROM {Item.styles.through._meta.db_table} fs "
                f"WHERE fs.item_id = {fk} AND fs.style_id = ANY(%s))"
            )
            params.append(list(filters.style_ids))
        if filters.category_ids or filters.brand_ids:
            parts = []
            if filters.category_ids:
                parts.append("fi.category_id = ANY(%s)")
                params.append(list(filters.category_ids))
            if filters.brand_ids:
                parts.append("fi.brand_id = ANY(%s)")
                params.append(list(filters.brand_ids))
            clauses.append(
                f"EXISTS (SELECT 1 FROM {Item._meta.db_table} fi WHERE fi.id = {fk} AND {' AND '.join(parts)})"
            )
    else:
        fk = "e.snapshot_id"
        clauses.append(f"EXISTS (SELECT 1 FROM {Snapshot._meta.db_table} fp WHERE fp.id = {fk} AND fp.is_published)")
        if filters.style_ids:
            clauses.append(
                f"EXISTS (SELECT 1 FROM {Snapshot.styles.through._meta.db_table} fs "
                f"WHERE fs.snapshot_id = {fk} AND fs.style_id = ANY(%s))"
            )
            params.append(list(filters.style_ids))
        if filters.brand_ids:
            clauses.append(
                f"EXISTS (SELECT 1 FROM {Snapshot.brands.through._meta.db_table} fb "
                f"WHERE fb.snapshot_id = {fk} AND fb.brand_id = ANY(%s))"
            )
            params.append(list(filters.brand_ids))
        if filters.category_ids:
            # A snapshot is "in" a category when one of its curated items is.
            clauses.append(
                "EXISTS (SELECT 1 FROM catalog_postitem fpi JOIN catalog_item fi ON fi.id = fpi.item_id "
                f"WHERE fpi.snapshot_id = {fk} AND fi.category_id = ANY(%s))"
            )
            params.append(list(filters.category_ids))
    if exclude_ids:
        clauses.append(f"{fk} <> ALL(%s)")
        params.append(list(exclude_ids))
    return clauses, params


def similar_sql(
    *,
    kind: Kind,
    model_version: ModelVersion,
    k: int,
    filters: Filters,
    query_vectors: Sequence[Sequence[float]] | None = None,
    query_from: tuple[Kind, int] | None = None,
    exclude_ids: Sequence[int] = (),
    exact: bool = False,
    candidate_factor: int = 1,
    probe_rows: int | None = None,
    query_regions: Sequence[int] | None = None,
    streamed: bool = False,
) -> tuple[str, list]:
    """The one statement for a search (exposed for EXPLAIN in tests and the benchmark; run it on a
    :func:`vector_cursor`, since query vectors are bound as binary parameters).

    ``kind`` is what is searched (the result type). The query vectors are either given
    (upload queries, the benchmark) or read in the same statement from a stored image's
    rows (``query_from=("snapshot", id)`` reads all its regions). ``streamed`` leaves out the
    grouping: the probe's rows come back one by one in graph order (nearest first), to be read
    through a cursor only as far as needed (:func:`_stream_snapshots`).
    """
    dim = int(model_version.dim)
    version_id = int(model_version.pk)
    regions = max(1, int(model_version.max_regions or 1))
    # The index path walks the graph in the index's precision (``q.v``); the distance that is
    # returned and that ranks the final candidates is always full precision (``q.vf``).
    index_type = index_precision()[0]
    table = ItemEmbedding._meta.db_table if kind == "item" else SnapshotEmbedding._meta.db_table
    fk = "item_id" if kind == "item" else "snapshot_id"
    per_probe = probe_rows or (k if kind == "item" else k * regions)  # rows each probe fetches
    per_probe *= max(1, candidate_factor)
    params: list = []
    if query_from is not None:
        source_kind, source_id = query_from
        source_table = ItemEmbedding._meta.db_table if source_kind == "item" else SnapshotEmbedding._meta.db_table
        source_fk = "item_id" if source_kind == "item" else "snapshot_id"
        q_sql = (
            f"SELECT s.vector::vector({dim}) AS vf FROM {source_table} s "
            f"WHERE s.model_version_id = {version_id} AND s.{source_fk} = %s"
        )
        params.append(int(source_id))
        if source_kind == "snapshot" and query_regions is not None:
            q_sql += " AND s.region = ANY(%s)"
            params.append([int(r) for r in query_regions])
    elif query_vectors is not None:
        q_sql = f"SELECT t.v::vector({dim}) AS vf FROM unnest(%b::vector[]) AS t(v)"
        params.append(_query_vectors_param(query_vectors))
    else:
        raise ValueError("give query_vectors or query_from")
    clauses, filter_params = _filter_sql(kind, filters, exclude_ids)
    params.extend(filter_params)
    where = " AND ".join([f"e.model_version_id = {version_id}", *clauses])
    full_distance = f"(e.vector::vector({dim}) <=> q.vf)"
    # The exact scan orders by the full-precision distance; "+ 0" keeps the planner off the index.
    order = f"{full_distance} + 0" if exact else f"(e.vector::{index_type}({dim}) <=> q.v)"
    sql = (
        f"WITH q AS MATERIALIZED (SELECT qq.vf, qq.vf::{index_type}({dim}) AS v FROM ({q_sql}) qq) "
        f"SELECT c.target_id, {'c.dist' if streamed else 'min(c.dist) AS dist'} FROM q CROSS JOIN LATERAL ("
        f"SELECT e.{fk} AS target_id, {full_distance} AS dist FROM {table} e WHERE {where} "
        f"ORDER BY {order} LIMIT {int(per_probe)}) c"
    )
    if not streamed:
        sql += f" GROUP BY c.target_id ORDER BY dist, c.target_id LIMIT {int(k)}"
    return sql, params


def _apply_options(cursor, options: SearchOptions, ef_search: int, per_probe: int, *, sort: bool = True) -> None:
    """The search's settings for this transaction only (SET LOCAL), in one round trip; ``sort=False``
    also keeps the planner from sorting rows exactly (``enable_sort``), otherwise left as it is."""
    ef_search = min(1000, max(int(ef_search), per_probe))
    cursor.execute(
        "SELECT set_config('hnsw.ef_search', %s, true), set_config('hnsw.iterative_scan', %s, true), "
        "set_config('hnsw.max_scan_tuples', %s, true)" + ("" if sort else ", set_config('enable_sort', 'off', true)"),
        [str(ef_search), options.iterative_scan, str(int(options.max_scan_tuples))],
    )


def nearest_ids(
    *,
    kind: Kind,
    model_version: ModelVersion,
    k: int,
    filters: Filters,
    query_vectors: Sequence[Sequence[float]] | None = None,
    query_from: tuple[Kind, int] | None = None,
    exclude_ids: Sequence[int] = (),
    options: SearchOptions | None = None,
    exact: bool = False,
) -> list[tuple[int, float]]:
    """(target id, cosine distance) pairs, best first; at most ``k``.

    Settings are applied with ``set_config(..., is_local=true)`` (SET LOCAL) inside a
    transaction so they never leak to other queries on the pooled connection.
    """
    hits = _nearest(
        kind=kind, model_version=model_version, k=k, filters=filters, query_vectors=query_vectors,
        query_from=query_from, exclude_ids=exclude_ids, options=options, exact=exact,
    )
    return [(target, dist) for target, dist, _ in hits]


def _nearest(
    *,
    kind: Kind,
    model_version: ModelVersion,
    k: int,
    filters: Filters,
    query_vectors: Sequence[Sequence[float]] | None = None,
    query_from: tuple[Kind, int] | None = None,
    exclude_ids: Sequence[int] = (),
    options: SearchOptions | None = None,
    exact: bool = False,
    hydrate: bool = False,
) -> list[tuple[int, float, Item | Snapshot | None]]:
    """:func:`nearest_ids` with, when ``hydrate``, each result's catalog row read by the same
    statement where it can be (the grouped statement; not the item -> snapshots stream), else None."""
    if k < 1:
        raise ValueError("k must be at least 1")
    options = options or SearchOptions.from_settings()
    # relaxed_order may hand rows over slightly out of distance order (strict_order, the default,
    # never does): over-fetch, then re-sort.
    factor = 2 if options.iterative_scan == "relaxed_order" and not exact else 1
    query_regions = query_region_rows(model_version) if kind == "item" else None
    if query_vectors is not None and kind == "item":
        vectors = np.asarray(query_vectors, dtype=np.float32)
        if query_regions is not None and len(vectors) == int(model_version.max_regions or 1):
            vectors = vectors[query_regions]  # a full set of snapshot regions (an upload): query with the subset
        vectors = vectors[np.linalg.norm(vectors, axis=1) > 0]  # an empty window has no direction
        if not len(vectors):
            raise ValueError("every query vector is zero")
        query_vectors = vectors
    common = dict(
        kind=kind, model_version=model_version, k=k, filters=filters, query_vectors=query_vectors,
        query_from=query_from, exclude_ids=exclude_ids, query_regions=query_regions,
    )
    regions = max(1, int(model_version.max_regions or 1))
    # Item -> snapshots with one query vector (an item's descriptor: always, in practice) is
    # read as a stream: region rows nearest first, through a cursor, stopping as soon as they
    # name k distinct snapshots. Those k are the true top k (any other snapshot's best region
    # comes later in the stream), and the graph is walked only as far as that takes: a few
    # rows when the nearest regions belong to different looks, more when one look's
    # overlapping windows crowd the top. The statement's LIMIT, k * regions rows, always holds
    # k distinct snapshots, so the walk never needs to go further.
    stream = kind == "snapshot" and not exact and _single_query(query_vectors, query_from)
    # Rows each probe fetches: k items per query region (exact, see the module docstring); k
    # snapshots among k * regions region rows.
    probe_rows = k if kind == "item" else k * regions
    # Helper connections can take a share of the probes only when they can see every row this
    # search may read, i.e. when the caller holds no transaction (and no uncommitted rows) of its own.
    outside = not connection.in_atomic_block and connection.get_autocommit()
    shares = _shares(common, model_version) if outside and not stream else []
    with transaction.atomic(), vector_cursor() as cursor:
        ef_search = options.ef_search if kind == "item" else options.ef_search_snapshots
        sort = True
        if filters.active and not exact and options.exact_below_rows > 0:
            rows_passing, style_graph = _filtered_rows(
                cursor, kind, model_version, filters, exclude_ids, cap=options.exact_below_rows
            )
            if rows_passing < options.exact_below_rows:
                exact, stream = True, False  # few rows pass the filters: scanning them exactly is cheaper
            else:
                # Many rows pass: walk the graph (iterative scan). The planner's estimate of the
                # filters is poor and it would otherwise often sort every filtered row exactly.
                sort = False
                if style_graph:
                    # A style's own graph holds a fraction of the rows, and a query's nearest rows in
                    # it are sparser: the walk keeps expanding rows about as far as its ef-th best,
                    # so the full ef costs up to twice the whole graph's walk for no better answer
                    # (docs/recommender.md, "Style filters walk their own graph").
                    ef_search = max(1, round(ef_search * options.ef_search_style_factor))
        # A streamed walk grows on demand (iterative scan), so ef_search stays as configured;
        # without iterative scan the walk must be wide enough for every row it may have to return.
        walk_rows = 0 if stream and options.iterative_scan != "off" else probe_rows * factor
        _apply_options(cursor, options, ef_search, walk_rows, sort=sort)
        if stream:
            streamed = _stream_snapshots(common, rows_cap=probe_rows, factor=factor)
            rows = [(target, dist, None) for target, dist in streamed]
        elif shares and not exact:
            walk = (options, ef_search, walk_rows, sort)
            rows = _run_shared(cursor, shares, walk, probe_rows, factor=factor, hydrate=hydrate)
        else:
            rows = _run(cursor, common, probe_rows, exact=exact, factor=factor, hydrate=hydrate)
        if len(rows) < k and not exact and options.exact_fallback:
            # The graph walk ended early (selective filter beyond max_scan_tuples, or few rows):
            # an exact scan of the filtered rows returns k whenever k rows match.
            cursor.execute("SELECT set_config('enable_sort', 'on', true)")
            rows = _run(cursor, common, probe_rows, exact=True, factor=1, hydrate=hydrate)
    return rows


def _run(
    cursor, common: dict, probe_rows: int, *, exact: bool, factor: int, hydrate: bool = False
) -> list[tuple[int, float, Item | Snapshot | None]]:
    """Run the grouped statement; (target id, distance, catalog row or None) triples, best first."""
    sql, params = similar_sql(
        exact=exact, **{**common, "candidate_factor": 1 if exact else factor}, probe_rows=probe_rows
    )
    if not hydrate:
        cursor.execute(sql, params)
        return [(int(r[0]), float(r[1]), None) for r in cursor.fetchall()]
    row_reader = _RowReader.of(common["kind"])
    cursor.execute(row_reader.wrap(sql), params)
    return [(int(r[0]), float(r[1]), row_reader.instance(r[2:])) for r in cursor.fetchall()]


def _shares(common: dict, model_version: ModelVersion) -> list[dict]:
    """The search split into one share of its query vectors per connection (``RECOMMENDER_PROBE_CONNECTIONS``),
    or [] when it is not split (one connection, or fewer than two query vectors)."""
    parts = 1 + fanout.helpers_wanted()
    if parts < 2:
        return []
    if common["query_vectors"] is not None:
        vectors = list(common["query_vectors"])
        if len(vectors) < 2:
            return []
        return [{**common, "query_vectors": vectors[i::parts]} for i in range(min(parts, len(vectors)))]
    source_kind, _ = common["query_from"]
    if source_kind != "snapshot":
        return []
    regions = common["query_regions"] or list(range(max(1, int(model_version.max_regions or 1))))
    if len(regions) < 2:
        return []
    # Interleaved, so that each share holds whole-photo and close-up windows alike.
    return [{**common, "query_regions": regions[i::parts]} for i in range(min(parts, len(regions)))]


def _run_elsewhere(common: dict, walk: tuple, probe_rows: int, factor: int, hydrate: bool):
    """One share of a search on a helper's connection: the same settings, its own short transaction."""
    options, ef_search, walk_rows, sort = walk
    with transaction.atomic(), vector_cursor() as cursor:
        _apply_options(cursor, options, ef_search, walk_rows, sort=sort)
        return _run(cursor, common, probe_rows, exact=False, factor=factor, hydrate=hydrate)


def _run_shared(
    cursor, shares: list[dict], walk: tuple, probe_rows: int, *, factor: int, hydrate: bool
) -> list[tuple[int, float, Item | Snapshot | None]]:
    """The grouped statement over each share of the query vectors, the first share here and the
    others on helper connections at the same time, merged into the top k.

    Exact: a target's best query vector lies in one share, and there it ranks among that
    share's top k whenever it ranks among the overall top k (the same argument as for the
    probes themselves, see the module docstring).
    """
    futures = fanout.submit_all(_run_elsewhere, [(share, walk, probe_rows, factor, hydrate) for share in shares[1:]])
    parts = [_run(cursor, shares[0], probe_rows, exact=False, factor=factor, hydrate=hydrate)]
    for share, future in zip(shares[1:], futures, strict=True):
        rows = None
        if future is not None:
            try:
                rows = future.result(timeout=settings.RECOMMENDER_QUERY_TIMEOUT_S)
            except Exception:
                logger.warning("a helper connection failed its share of a search; running it here", exc_info=True)
        parts.append(rows if rows is not None else _run(cursor, share, probe_rows, exact=False, factor=factor,
                                                         hydrate=hydrate))
    best: dict[int, tuple[float, Item | Snapshot | None]] = {}
    for rows in parts:
        for target, dist, obj in rows:
            if target not in best or dist < best[target][0]:
                best[target] = (dist, obj)  # every share reads rows, or none does (same hydrate)
    k = shares[0]["k"]
    return sorted(((t, d, o) for t, (d, o) in best.items()), key=lambda row: (row[1], row[0]))[:k]


class _RowReader:
    """Reads a result's catalog row (an item with its brand and category, as ``select_related``
    would; a snapshot) in the search statement itself, instead of a second query.

    The grouped statement becomes a CTE joined to the catalog tables; its order is kept. A
    result whose catalog row is gone (deleted meanwhile) drops out, as it would from ``in_bulk``.
    """

    RELATED = {"item": ("brand", "category"), "snapshot": ()}  # read with the row, like select_related
    _cache: dict[str, _RowReader] = {}

    def __init__(self, kind: Kind) -> None:
        self.model = Item if kind == "item" else Snapshot
        table = self.model._meta.db_table
        # (model, its field names in column order, the main model's foreign key to it or None)
        self.parts = [(self.model, None)]
        selects, joins = [], []
        for n, name in enumerate(self.RELATED[kind]):
            field = self.model._meta.get_field(name)
            related = field.related_model
            self.parts.append((related, field))
            joins.append(f"LEFT JOIN {related._meta.db_table} r{n} ON r{n}.id = t.{field.column}")
        self.parts = [(model, [f.attname for f in model._meta.concrete_fields], fk) for model, fk in self.parts]
        for alias, (model, _, _) in zip(["t", *(f"r{n}" for n in range(len(joins)))], self.parts, strict=True):
            selects += [f'{alias}."{f.column}"' for f in model._meta.concrete_fields]
        self.template = (
            f"WITH r AS ({{sql}}) SELECT r.target_id, r.dist, {', '.join(selects)} "
            f"FROM r JOIN {table} t ON t.id = r.target_id {' '.join(joins)} ORDER BY r.dist, r.target_id"
        )

    @classmethod
    def of(cls, kind: Kind) -> _RowReader:
        if kind not in cls._cache:
            cls._cache[kind] = cls(kind)
        return cls._cache[kind]

    def wrap(self, sql: str) -> str:
        return self.template.replace("{sql}", sql, 1)

    def instance(self, values: Sequence) -> Item | Snapshot:
        start, main = 0, None
        for model, names, fk in self.parts:
            chunk = values[start : start + len(names)]
            start += len(names)
            obj = None if chunk[0] is None else model.from_db(connection.alias, names, chunk)
            if fk is None:
                main = obj
            else:
                fk.set_cached_value(main, obj)
        return main


def _single_query(query_vectors, query_from) -> bool:
    if query_from is not None:
        return query_from[0] == "item"  # an item has one descriptor per model version
    return query_vectors is not None and len(query_vectors) == 1


def _stream_snapshots(common: dict, *, rows_cap: int, factor: int) -> list[tuple[int, float]]:
    """Item -> snapshots: read region rows nearest first until they name k distinct snapshots.

    Runs the ungrouped statement through a server-side cursor (one statement, fetched in
    growing batches), inside the caller's transaction. Under ``relaxed_order`` the iterative
    scan may hand a row over a little late, so reading goes on to ``factor`` times the rows
    it took to see k snapshots. Returns (snapshot id, best distance) pairs, best first.
    """
    k = common["k"]
    sql, params = similar_sql(**common, probe_rows=rows_cap, candidate_factor=1, streamed=True)
    best: dict[int, float] = {}
    fetched, stop_at, size = 0, None, k * SNAPSHOT_ROWS_FIRST
    with vector_cursor("lookbook_nearest_snapshots") as cursor:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(size)
            for target, dist in batch:
                target, dist = int(target), float(dist)
                if dist < best.get(target, float("inf")):
                    best[target] = dist
            fetched += len(batch)
            if len(batch) < size:
                break  # the walk is over: every row it could give has been read
            if stop_at is None and len(best) >= k:
                stop_at = fetched * factor
            if stop_at is not None and fetched >= stop_at:
                break
            size = min(size * 2, rows_cap)
    return sorted(best.items(), key=lambda pair: (pair[1], pair[0]))[:k]


def _filtered_rows(
    cursor, kind: Kind, model_version: ModelVersion, filters: Filters, exclude_ids, *, cap: int
) -> tuple[int, bool]:
    """How many of the version's embedding rows pass the filters, counting at most ``cap``, and
    whether the search walks a style's own graph.

    A filter of one style alone that has its own graph for this version and table counts as
    ``cap`` without counting: such a style holds at least ``RECOMMENDER_STYLE_INDEX_MIN_ROWS``
    rows, and its graph is the fast path (one statement either way).
    """
    table = ItemEmbedding._meta.db_table if kind == "item" else SnapshotEmbedding._meta.db_table
    clauses, params = _filter_sql(kind, filters, exclude_ids, style_column=False)
    where = " AND ".join([f"e.model_version_id = {int(model_version.pk)}", *clauses])
    count = f"(SELECT count(*) FROM (SELECT 1 FROM {table} e WHERE {where} LIMIT {int(cap)}) t)"
    if len(filters.style_ids) == 1 and not (filters.category_ids or filters.brand_ids):
        name = style_index_name(TARGETS[0 if kind == "item" else 1], model_version, filters.style_ids[0])
        has_graph = f"EXISTS ({INDEX_VALID_SQL} AND i.indisvalid)"
        cursor.execute(
            f"WITH g AS (SELECT {has_graph} AS has_graph) "
            f"SELECT g.has_graph, CASE WHEN g.has_graph THEN {int(cap)} ELSE {count} END FROM g",
            [name, *params],
        )
        has, rows = cursor.fetchone()
        return int(rows), bool(has)
    cursor.execute(f"SELECT {count}", params)
    return int(cursor.fetchone()[0]), False


def _expand(
    *, kind: Kind, model_version: ModelVersion, vectors: np.ndarray, ids: list[tuple[int, float]], n: int
) -> np.ndarray:
    """Alpha query expansion: each query vector + the top-n results' vectors weighted by similarity."""
    top = ids[:n]
    if not top:
        return vectors
    model = ItemEmbedding if kind == "item" else SnapshotEmbedding
    fk = "item_id" if kind == "item" else "snapshot_id"
    rows = model.objects.filter(model_version_id=model_version.pk, **{f"{fk}__in": [i for i, _ in top]})
    if kind == "snapshot":
        rows = rows.filter(region=0)
    by_id = {getattr(r, fk): np.asarray(r.vector, dtype=np.float64) for r in rows}
    neighbours = sum((max(0.0, 1.0 - d) ** 3) * by_id[i] for i, d in top if i in by_id)
    expanded = vectors + neighbours
    norms = np.linalg.norm(expanded, axis=1, keepdims=True)
    return expanded / np.where(norms == 0, 1.0, norms)


def _stored_vectors(kind: Kind, model_version: ModelVersion, source_id: int) -> np.ndarray:
    model = ItemEmbedding if kind == "item" else SnapshotEmbedding
    fk = "item_id" if kind == "item" else "snapshot_id"
    rows = model.objects.filter(model_version_id=model_version.pk, **{fk: source_id}).values_list("vector", flat=True)
    return np.asarray([np.asarray(v, dtype=np.float64) for v in rows])


def _search(
    *,
    kind: Kind,
    model_version: ModelVersion,
    k: int,
    filters: Filters,
    query_vectors: Sequence[Sequence[float]] | None,
    query_from: tuple[Kind, int] | None,
    exclude_ids: Sequence[int],
    expansion_n: int,
    options: SearchOptions | None,
) -> list[tuple[int, float, Item | Snapshot]]:
    """The k results with their catalog rows (read by the search statement itself where it can be)."""
    ids = _nearest(
        kind=kind, model_version=model_version, k=k, filters=filters, query_vectors=query_vectors,
        query_from=query_from, exclude_ids=exclude_ids, options=options, hydrate=expansion_n <= 0,
    )
    if not ids and query_from is not None:
        model = ItemEmbedding if query_from[0] == "item" else SnapshotEmbedding
        fk = "item_id" if query_from[0] == "item" else "snapshot_id"
        if not model.objects.filter(model_version_id=model_version.pk, **{fk: query_from[1]}).exists():
            raise NotEmbedded()
    if expansion_n > 0 and ids:
        base = (
            np.asarray(query_vectors, dtype=np.float64)
            if query_vectors is not None
            else _stored_vectors(query_from[0], model_version, query_from[1])
        )
        pairs = [(target, dist) for target, dist, _ in ids]
        expanded = _expand(kind=kind, model_version=model_version, vectors=base, ids=pairs, n=expansion_n)
        ids = _nearest(
            kind=kind, model_version=model_version, k=k, filters=filters, query_vectors=expanded.tolist(),
            exclude_ids=exclude_ids, options=options, hydrate=True,
        )
    missing = [target for target, _, obj in ids if obj is None]
    if missing:  # the item -> snapshots stream returns ids only
        related = _RowReader.RELATED[kind]
        rows = (Item if kind == "item" else Snapshot).objects
        found = (rows.select_related(*related) if related else rows).in_bulk(missing)
        ids = [(target, dist, obj if obj is not None else found.get(target)) for target, dist, obj in ids]
    return [(target, dist, obj) for target, dist, obj in ids if obj is not None]


def _check_vectors(vectors: Sequence[Sequence[float]], model_version: ModelVersion) -> None:
    if len(vectors) == 0:
        raise ValueError("at least one query vector is needed")
    for vector in vectors:
        if len(vector) != model_version.dim:
            raise ValueError(f"query vectors must have {model_version.dim} dimensions, got {len(vector)}")
    if not np.all(np.isfinite(np.asarray(vectors, dtype=np.float64))):
        raise ValueError("query vector has non-finite values")


def item_list_for_snapshot(
    *,
    snapshot_id: int | None = None,
    vectors: Sequence[Sequence[float]] | None = None,
    k: int | None = None,
    filters: Filters | None = None,
    exclude_ids: Sequence[int] = (),
    expansion_n: int | None = None,
    model_version: ModelVersion | None = None,
    options: SearchOptions | None = None,
) -> list[ItemMatch]:
    """The k items that best match a snapshot (stored, by id; or uploaded: its region ``vectors``).

    An item's score is its best cosine over the snapshot's regions. Raises
    :class:`NoActiveModel` or :class:`NotEmbedded` when there is nothing to rank with.
    """
    version = _require_active(model_version)
    if (snapshot_id is None) == (vectors is None):
        raise ValueError("give exactly one of snapshot_id or vectors")
    if vectors is not None:
        _check_vectors(vectors, version)
    ids = _search(
        kind="item", model_version=version, k=k or settings.RECOMMENDER_TOP_K, filters=filters or Filters(),
        query_vectors=vectors, query_from=None if snapshot_id is None else ("snapshot", snapshot_id),
        exclude_ids=exclude_ids,
        expansion_n=settings.RECOMMENDER_QUERY_EXPANSION_N if expansion_n is None else expansion_n, options=options,
    )
    return [ItemMatch(item=item, distance=d) for _, d, item in ids]


def snapshot_list_for_item(
    *,
    item_id: int | None = None,
    vectors: Sequence[Sequence[float]] | None = None,
    k: int | None = None,
    filters: Filters | None = None,
    exclude_ids: Sequence[int] = (),
    expansion_n: int | None = None,
    model_version: ModelVersion | None = None,
    options: SearchOptions | None = None,
) -> list[SnapshotMatch]:
    """The k published snapshots that wear something like an item (stored by id, or its ``vectors``).

    A snapshot is ranked by its best-matching region. Raises :class:`NoActiveModel` or
    :class:`NotEmbedded` when there is nothing to rank with.
    """
    version = _require_active(model_version)
    if (item_id is None) == (vectors is None):
        raise ValueError("give exactly one of item_id or vectors")
    if vectors is not None:
        _check_vectors(vectors, version)
    ids = _search(
        kind="snapshot", model_version=version, k=k or settings.RECOMMENDER_TOP_K, filters=filters or Filters(),
        query_vectors=vectors, query_from=None if item_id is None else ("item", item_id), exclude_ids=exclude_ids,
        expansion_n=settings.RECOMMENDER_QUERY_EXPANSION_N if expansion_n is None else expansion_n, options=options,
    )
    return [SnapshotMatch(snapshot=snapshot, distance=d) for _, d, snapshot in ids]
