"""A look's searches as statements: every garment's walk among its kind and the whole photo's walk in one
statement, the walks that ended short walked again wider in a second, an exact scan of what is still short
in a third (docs/recommender.md, "Shop the look"; docs/bench.md, "Lost walks"). :mod:`.pieces` builds the
probes from a look's garments and picks one item per garment from these rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from django.db import transaction

from catalog.embedding_targets import ITEM, SNAPSHOT
from catalog.models import Item
from recommender.models import ModelVersion
from recommender.selectors.filters import Filters
from recommender.selectors.similarity.execution import vector_cursor
from recommender.selectors.similarity.rows import RowReader
from recommender.selectors.similarity.types import SearchOptions


def garment_options(options: SearchOptions | None) -> SearchOptions:
    """A garment's search walks the graph with its kind as a post-filter, without the filter count first:
    the count (sized for a shopper's style filter) cost more than the walk and sent small kinds to slow
    exact scans (docs/bench.md, "Shop the look at scale"); a walk that ends short is re-run exactly. Without
    the count the planner would often sort every item the shopper's filters pass (a style's 10%) instead
    of walking: the walk is kept (``walk_only``)."""
    return replace(options or SearchOptions.from_settings(), exact_below_rows=0, walk_only=True)


@dataclass(frozen=True)
class Probe:
    """One probe of a look's statement: garment ``ord`` (in choosing order) searched from row ``region``
    for its ``limit`` nearest items among ``kinds``."""

    ord: int
    region: int
    limit: int
    kinds: tuple[int, ...]


PICKS_WIDEN = 5  # a short walk of a look is walked again this many times wider (at most 1000)
WHOLE = -1  # the probe index of the whole photo's walk in :func:`picks_sql`'s rows


def picks_sql(
    *,
    version: ModelVersion,
    probes: Sequence[Probe],
    whole_limit: int,
    filters: Filters,
    exclude_ids,
    snapshot_id=None,
    vectors=None,
    exact: bool = False,
) -> tuple[str, list]:
    """A look's searches in one statement: per garment probe its ``limit`` nearest items among its
    ``kinds``, and the whole photo's (region 0) ``whole_limit`` nearest items of any kind (probe index
    :data:`WHOLE`; none when 0), the shopper's other filters in the same WHERE; from a stored look's rows
    (``snapshot_id``) or given ``vectors`` (by region). Rows ``(probe ord, item_id, distance, category_id)``;
    run on a :func:`vector_cursor`. Each probe is a branch of its own whose kind is a literal
    (:func:`~recommender.indexes.kind_clause`): a kind that is a whole garment group then matches the
    group's own partial index, so the garment walks a graph of its kind only. The LIMITs are constants:
    with a per-row LIMIT the planner leaves the HNSW index for a sort of every item. ``exact``: every search
    an exact scan (the full distance plus 0 keeps the planner off the HNSW indexes; the kind's rows come by
    the (version, category) index)."""
    from recommender.indexes import index_precision, kind_clause
    from recommender.selectors.similarity.sql import filter_clauses

    dim, version_id = int(version.dim), int(version.pk)
    index_type = index_precision()[0]
    if snapshot_id is not None:
        stored = f"JOIN {SNAPSHOT.table} s ON s.model_version_id = {version_id} AND s.{SNAPSHOT.fk} = %s"
        garment_rows = (
            f"SELECT x.pid, s.vector::vector({dim}) AS vf "
            f"FROM unnest(%s::int[], %s::int[]) AS x(pid, region) {stored} AND s.region = x.region"
        )
        whole_row = f"SELECT s.vector::vector({dim}) AS vf FROM (SELECT 0 AS region) x {stored} AND s.region = 0"
        params: list = [[p.ord for p in probes], [p.region for p in probes], int(snapshot_id)]
        whole_params: list = [int(snapshot_id)]
    else:
        garment_rows = f"SELECT x.pid, x.vf::vector({dim}) AS vf FROM unnest(%s::int[], %b::vector[]) AS x(pid, vf)"
        whole_row = f"SELECT %b::vector({dim}) AS vf"
        vectors_of = [np.asarray(vectors[p.region], dtype=np.float32) for p in probes]
        params = [[p.ord for p in probes], vectors_of]
        whole_params = [np.asarray(vectors[0], dtype=np.float32)]
    # the kinds are per garment; the shopper's styles and brands (and the exclusions) the same for all
    clauses, filter_params = filter_clauses("item", replace(filters, category_ids=()), exclude_ids)
    order = f"(e.vector::vector({dim}) <=> q.vf) + 0" if exact else f"(e.vector::{index_type}({dim}) <=> q.v)"

    def walk(source: str, limit: int, kinds: tuple[int, ...] | None) -> str:
        where = " AND ".join(
            [f"e.model_version_id = {version_id}", *([kind_clause(kinds, "e")] if kinds is not None else []), *clauses]
        )
        return (
            f"SELECT q.pid, c.target_id, c.dist, c.category_id FROM {source} q CROSS JOIN LATERAL ("
            f"SELECT e.{ITEM.fk} AS target_id, (e.vector::vector({dim}) <=> q.vf) AS dist, e.category_id "
            f"FROM {ITEM.table} e WHERE {where} ORDER BY {order} LIMIT {int(limit)}) c"
        )

    ctes, parts, cte_params, walk_params = [], [], [], []
    if probes:
        ctes.append(f"g AS MATERIALIZED (SELECT gg.*, gg.vf::{index_type}({dim}) AS v FROM ({garment_rows}) gg)")
        cte_params += params
        for probe in probes:
            parts.append(walk(f"(SELECT * FROM g WHERE g.pid = {int(probe.ord)})", probe.limit, probe.kinds))
            walk_params += filter_params
    if whole_limit > 0:
        ctes.append(
            f"w AS MATERIALIZED (SELECT {WHOLE} AS pid, ww.vf, ww.vf::{index_type}({dim}) AS v FROM ({whole_row}) ww)"
        )
        parts.append(walk("w", whole_limit, None))
        cte_params += whole_params
        walk_params += filter_params
    return f"WITH {', '.join(ctes)} {' UNION ALL '.join(parts)}", [*cte_params, *walk_params]


@dataclass
class LookHits:
    """A look's search rows: per garment probe ``{item_id: distance}``, the whole photo's ``{item_id: (distance,
    category_id)}``, and every hit's catalog row, read by the search statement itself (:meth:`item`)."""

    found: list[dict[int, float]]
    whole: dict[int, tuple[float, int | None]]
    rows: dict[int, Sequence] = field(default_factory=dict)

    def item(self, item_id: int) -> Item | None:
        """The hit's item with its brand and category (None if it was deleted meanwhile)."""
        values = self.rows.get(item_id)
        return None if values is None else RowReader.of("item").instance(values)


def probe_hits(*, version, probes, filters, exclude_ids, snapshot_id, vectors, options, exact_only=False) -> LookHits:
    """The look's :class:`LookHits`, in one transaction: one statement of walks under one set of session
    settings, the hits' catalog rows read in it (no second query for the picks); when walks ended short
    of their limits (a product line the walk did not reach, a kind rarer under the filters than the walk
    reaches, or fewer items), one statement walks them again :data:`PICKS_WIDEN` times wider, then one
    exact statement ranks those still short, as ``plan_run`` re-runs a short walk exactly. With
    ``exact_only`` every search is an exact scan (the reference of the benchmark and the tests), in that
    one exact statement."""
    from django.conf import settings

    from recommender.selectors.similarity.execution import settings_apply
    from recommender.selectors.similarity.planner import SearchPlan, Strategy

    options = garment_options(options)
    whole_limit = max(1, int(settings.RECOMMENDER_PICKS_WHOLE_PHOTO_TOP))
    deepest = max([whole_limit, *(p.limit for p in probes)])
    plan = SearchPlan(
        strategy=Strategy.WALK,
        ef_search=options.ef_search,
        walk_rows=0 if options.iterative_scan != "off" else deepest,
        probe_rows=deepest,
        candidate_factor=1,
        enable_sort=False,  # the planner would otherwise sort every item of a kind exactly
        exact_fallback=True,
        iterative_scan=options.iterative_scan,
        max_scan_tuples=min(options.max_scan_tuples, max(1, int(settings.RECOMMENDER_PICKS_MAX_SCAN_TUPLES))),
    )
    hits = LookHits(found=[{} for _ in probes], whole={})
    found, whole, reader = hits.found, hits.whole, RowReader.of("item")

    def run(cursor, searched: Sequence[Probe], whole_top: int, exact: bool) -> None:
        sql, params = picks_sql(
            version=version,
            probes=searched,
            whole_limit=whole_top,
            filters=filters,
            exclude_ids=exclude_ids,
            snapshot_id=snapshot_id,
            vectors=vectors,
            exact=exact,
        )
        cursor.execute(reader.wrap_with(sql, ("pid", "target_id", "dist", "category_id")), params)
        for pid, item_id, dist, category_id, *row in cursor.fetchall():
            hits.rows[int(item_id)] = row
            if int(pid) == WHOLE:
                whole[int(item_id)] = (float(dist), category_id)
            else:
                found[int(pid)][int(item_id)] = float(dist)

    def shorts() -> tuple[list[Probe], int]:
        short = [probe for probe in probes if len(found[probe.ord]) < probe.limit]
        for probe in short:
            found[probe.ord] = {}
        if len(whole) < whole_limit:
            whole.clear()
            return short, whole_limit
        return short, 0

    with transaction.atomic(), vector_cursor() as cursor:
        if not exact_only:
            settings_apply(cursor, plan.session_settings)
            run(cursor, probes, whole_limit, exact=False)
            short, whole_top = shorts()
            if short or whole_top:  # a walk that lost its way: widened once before any exact scan
                settings_apply(cursor, {"hnsw.ef_search": str(min(1000, options.ef_search * PICKS_WIDEN))})
                run(cursor, short, whole_top, exact=False)
        short, whole_top = shorts()
        if short or whole_top:
            if not exact_only:  # an exact scan sorts: the walks' setting would only penalise it
                settings_apply(cursor, {"enable_sort": "on"})
            run(cursor, short, whole_top, exact=True)
    return hits
