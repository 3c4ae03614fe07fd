"""Nearest neighbours on pgvector: snapshot -> items and item -> snapshots; what views, API and workers call.

Scoring (the ml contract): score(snapshot, item) = max over the snapshot's region vectors of
cosine(region, item). Both directions run over the active model version's rows only, one HNSW
probe per query vector, grouped by the target (a snapshot counts once, by its best region), with
the shoppers' filters inside the probe.

The package, one concern a module: :mod:`.types` (the query, options, matches, errors),
:mod:`.planner` (a pure decision: exact scan, graph walk, stream or shared probes, and the walk's
breadth and row limits), :mod:`.sql` (statement text), :mod:`.execution` (cursor, session
settings, streaming, shares on :mod:`.fanout`'s helper connections), :mod:`.rows` (the results'
catalog rows), :mod:`.expansion` (query expansion). This module prepares a query, asks the
planner, and runs its plan.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from recommender.models import ModelVersion
from recommender.selectors.filters import Filters
from recommender.selectors.similarity import fanout
from recommender.selectors.similarity.execution import plan_run, vector_cursor
from recommender.selectors.similarity.expansion import expanded_vectors, is_embedded, stored_vectors
from recommender.selectors.similarity.planner import FilterCount, needs_filter_count, plan_search
from recommender.selectors.similarity.rows import Hit, rows_complete
from recommender.selectors.similarity.sql import filtered_rows_sql, search_sql
from recommender.selectors.similarity.types import (
    ItemMatch,
    Kind,
    NoActiveModel,
    NotEmbedded,
    Query,
    RecommendationUnavailable,
    SearchOptions,
    SnapshotMatch,
    query_vectors_array,
)

__all__ = [
    "ItemMatch",
    "NoActiveModel",
    "NotEmbedded",
    "RecommendationUnavailable",
    "SearchOptions",
    "SnapshotMatch",
    "item_list_for_snapshot",
    "model_version_active",
    "nearest_ids",
    "query_region_rows",
    "similar_sql",
    "snapshot_list_for_item",
    "vector_cursor",
]


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


def _query(
    *,
    kind: Kind,
    model_version: ModelVersion,
    k: int,
    filters: Filters,
    query_vectors: Sequence[Sequence[float]] | np.ndarray | None,
    query_from: tuple[Kind, int] | None,
    exclude_ids: Sequence[int],
) -> Query:
    """The search as a :class:`Query`. Snapshot -> items queries with the configured subset of regions:
    a stored snapshot's in the statement, an upload's full set of regions here; empty windows drop out."""
    regions = query_region_rows(model_version) if kind == "item" else None
    vectors = None if query_vectors is None else query_vectors_array(query_vectors)
    if vectors is not None and kind == "item":
        if regions is not None and len(vectors) == int(model_version.max_regions or 1):
            vectors = vectors[regions]
        vectors = vectors[np.linalg.norm(vectors, axis=1) > 0]  # an empty window has no direction
        if not len(vectors):
            raise ValueError("every query vector is zero")
        # the garment scheme pads a snapshot with fewer garments by repeating row 0: one probe is enough
        vectors = vectors[[0, *(r for r in range(1, len(vectors)) if not np.array_equal(vectors[r], vectors[0]))]]
    return Query(
        kind=kind,
        model_version=model_version,
        k=k,
        filters=filters,
        vectors=vectors,
        source=query_from,
        exclude_ids=tuple(int(i) for i in exclude_ids),
        regions=None if regions is None else tuple(regions),
    )


def _hits(query: Query, options: SearchOptions | None, *, exact: bool = False, hydrate: bool = False) -> list[Hit]:
    """Plan and run one search in a transaction of its own (a savepoint inside the caller's): settings
    are applied with SET LOCAL, so they never leak to other queries on the pooled connection."""
    if query.k < 1:
        raise ValueError("k must be at least 1")
    options = options or SearchOptions.from_settings()
    # Helper connections see committed rows only: they may take a share of the probes only when the
    # caller holds no transaction (and no uncommitted rows) of its own.
    outside = not connection.in_atomic_block and connection.get_autocommit()
    with transaction.atomic(), vector_cursor() as cursor:
        count = None
        if needs_filter_count(query, options, exact=exact):
            cursor.execute(*filtered_rows_sql(query, cap=options.exact_below_rows))
            has_graph, rows = cursor.fetchone()
            count = FilterCount(rows=int(rows), style_graph=bool(has_graph))
        plan = plan_search(
            query, options, exact=exact, count=count, helpers=fanout.helpers_wanted(), outside_transaction=outside
        )
        return plan_run(cursor, query, plan, hydrate=hydrate)


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
    """(target id, cosine distance) pairs, best first; at most ``k`` (``kind`` is what is searched)."""
    query = _query(
        kind=kind,
        model_version=model_version,
        k=k,
        filters=filters,
        query_vectors=query_vectors,
        query_from=query_from,
        exclude_ids=exclude_ids,
    )
    return [(target_id, dist) for target_id, dist, _ in _hits(query, options, exact=exact)]


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
    """The statement of a search, for EXPLAIN in tests and the benchmark (run it on a
    :func:`vector_cursor`: query vectors are bound as binary parameters). ``probe_rows`` defaults
    to what the search itself fetches per probe."""
    query = Query(
        kind=kind,
        model_version=model_version,
        k=k,
        filters=filters,
        vectors=None if query_vectors is None else query_vectors_array(query_vectors),
        source=query_from,
        exclude_ids=tuple(exclude_ids),
        regions=None if query_regions is None else tuple(query_regions),
    )
    per_probe = (probe_rows or (k if kind == "item" else k * query.stored_regions)) * max(1, candidate_factor)
    return search_sql(query, per_probe=per_probe, exact=exact, streamed=streamed)


def _search(query: Query, *, expansion_n: int, options: SearchOptions | None) -> list[Hit]:
    """The k results with their catalog rows (read by the search statement itself where it can be)."""
    hits = _hits(query, options, hydrate=expansion_n <= 0)
    if not hits and query.source is not None:
        if not is_embedded(query.source[0], query.model_version, query.source[1]):
            raise NotEmbedded()
    if expansion_n > 0 and hits:
        base = (
            np.asarray(query.vectors, dtype=np.float64)
            if query.source is None
            else stored_vectors(query.source[0], query.model_version, query.source[1])
        )
        expanded = expanded_vectors(
            kind=query.kind,
            model_version=query.model_version,
            vectors=base,
            hits=[(target_id, dist) for target_id, dist, _ in hits],
            n=expansion_n,
        )
        query = _query(
            kind=query.kind,
            model_version=query.model_version,
            k=query.k,
            filters=query.filters,
            query_vectors=expanded,
            query_from=None,
            exclude_ids=query.exclude_ids,
        )
        hits = _hits(query, options, hydrate=True)
    return rows_complete(query.kind, hits)


def _require_active(model_version: ModelVersion | None) -> ModelVersion:
    version = model_version if model_version is not None else model_version_active()
    if version is None or not version.dim:
        raise NoActiveModel()
    return version


def _check_vectors(vectors: Sequence[Sequence[float]], model_version: ModelVersion) -> None:
    if len(vectors) == 0:
        raise ValueError("at least one query vector is needed")
    for vector in vectors:
        if len(vector) != model_version.dim:
            raise ValueError(f"query vectors must have {model_version.dim} dimensions, got {len(vector)}")
    if not np.all(np.isfinite(np.asarray(vectors, dtype=np.float64))):
        raise ValueError("query vector has non-finite values")


def _list_for(
    kind: Kind, source_kind: Kind, *, source_id, vectors, k, filters, exclude_ids, expansion_n, model_version, options
) -> list[Hit]:
    """The shared body of the two public searches (``kind`` is what is searched)."""
    version = _require_active(model_version)
    if (source_id is None) == (vectors is None):
        raise ValueError(f"give exactly one of {source_kind}_id or vectors")
    if vectors is not None:
        _check_vectors(vectors, version)
    query = _query(
        kind=kind,
        model_version=version,
        k=k or settings.RECOMMENDER_TOP_K,
        filters=filters or Filters(),
        query_vectors=vectors,
        query_from=None if source_id is None else (source_kind, source_id),
        exclude_ids=exclude_ids,
    )
    expansion = settings.RECOMMENDER_QUERY_EXPANSION_N if expansion_n is None else expansion_n
    return _search(query, expansion_n=expansion, options=options)


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
    hits = _list_for(
        "item",
        "snapshot",
        source_id=snapshot_id,
        vectors=vectors,
        k=k,
        filters=filters,
        exclude_ids=exclude_ids,
        expansion_n=expansion_n,
        model_version=model_version,
        options=options,
    )
    return [ItemMatch(item=item, distance=d) for _, d, item in hits]


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
    hits = _list_for(
        "snapshot",
        "item",
        source_id=item_id,
        vectors=vectors,
        k=k,
        filters=filters,
        exclude_ids=exclude_ids,
        expansion_n=expansion_n,
        model_version=model_version,
        options=options,
    )
    return [SnapshotMatch(snapshot=snapshot, distance=d) for _, d, snapshot in hits]
