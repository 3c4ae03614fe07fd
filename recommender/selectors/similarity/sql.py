"""The SQL text of a search: the probe statement, the shoppers' filters as its WHERE, the filter count.

Only text and parameters are built here; :mod:`.execution` runs them. Query vectors are bound as
binary ``vector`` parameters (``%b``), so these statements run on a :func:`.execution.vector_cursor`.
"""

from __future__ import annotations

from catalog.embedding_targets import target
from recommender.indexes import INDEX_VALID_SQL, index_precision, style_clause, style_index_name
from recommender.selectors.filters import Filters, owners_matching
from recommender.selectors.similarity.types import Kind, Query


def filter_clauses(kind: Kind, filters: Filters, exclude_ids, *, style_column: bool = True) -> tuple[list[str], list]:
    """WHERE clauses (on alias ``e``) restricting embedding rows to the images the filters select.

    What the filters select is :func:`recommender.selectors.filters.owners_matching`, the same
    queryset the browse lists show, compiled into a subquery. ``style_column`` adds the rows' own
    copy of their owner's styles (kept by the database), written exactly like a per-style partial
    index's predicate so the planner can walk that style's graph only (``recommender.indexes``);
    it selects no other rows than the subquery does. A count leaves it out (``style_column=False``):
    counting through the link tables alone reads no embedding row.
    """
    clauses: list[str] = []
    params: list = []
    if filters.style_ids and style_column:
        clauses.append(style_clause(filters.style_ids, "e"))
    fk = f"e.{target(kind).fk}"
    owners = owners_matching(kind, filters)
    if owners.query.where:  # an unfiltered item search needs no subquery
        sql, owner_params = owners.order_by().values("pk").query.sql_with_params()
        clauses.append(f"{fk} IN ({sql})")
        params.extend(owner_params)
    if exclude_ids:
        clauses.append(f"{fk} <> ALL(%s)")
        params.append([int(i) for i in exclude_ids])
    return clauses, params


def _query_vectors_sql(query: Query, dim: int, version_id: int) -> tuple[str, list]:
    """The statement's query vectors: given ones as one binary array parameter, or a stored image's rows."""
    if query.source is not None:
        source = target(query.source[0])
        sql = (
            f"SELECT s.vector::vector({dim}) AS vf FROM {source.table} s "
            f"WHERE s.model_version_id = {version_id} AND s.{source.fk} = %s"
        )
        params: list = [int(query.source[1])]
        if source.regions and query.regions is not None:
            sql += " AND s.region = ANY(%s)"
            params.append([int(r) for r in query.regions])
        return sql, params
    if query.vectors is not None:
        return f"SELECT t.v::vector({dim}) AS vf FROM unnest(%b::vector[]) AS t(v)", [list(query.vectors)]
    raise ValueError("give query_vectors or query_from")


def search_sql(query: Query, *, per_probe: int, exact: bool = False, streamed: bool = False) -> tuple[str, list]:
    """One HNSW probe per query vector, ``per_probe`` rows each, grouped by target (its best distance).

    Each probe is a LATERAL subquery ordered by the same ``vector::<index type>(dim) <=> q``
    expression as the version's partial index, with the literal ``model_version_id`` so the
    partial index matches; the walk runs in the index's precision (``q.v``), while the distance
    returned and ranked is full precision (``q.vf``). ``exact`` orders by the full distance plus 0,
    which keeps the planner off the index. ``streamed`` leaves out the grouping: rows come back
    in graph order (nearest first), to be read only as far as needed.
    """
    version = query.model_version
    dim, version_id = int(version.dim), int(version.pk)
    index_type = index_precision()[0]
    searched = target(query.kind)
    q_sql, params = _query_vectors_sql(query, dim, version_id)
    clauses, filter_params = filter_clauses(query.kind, query.filters, query.exclude_ids)
    params.extend(filter_params)
    where = " AND ".join([f"e.model_version_id = {version_id}", *clauses])
    full_distance = f"(e.vector::vector({dim}) <=> q.vf)"
    order = f"{full_distance} + 0" if exact else f"(e.vector::{index_type}({dim}) <=> q.v)"
    sql = (
        f"WITH q AS MATERIALIZED (SELECT qq.vf, qq.vf::{index_type}({dim}) AS v FROM ({q_sql}) qq) "
        f"SELECT c.target_id, {'c.dist' if streamed else 'min(c.dist) AS dist'} FROM q CROSS JOIN LATERAL ("
        f"SELECT e.{searched.fk} AS target_id, {full_distance} AS dist FROM {searched.table} e WHERE {where} "
        f"ORDER BY {order} LIMIT {int(per_probe)}) c"
    )
    if not streamed:
        sql += f" GROUP BY c.target_id ORDER BY dist, c.target_id LIMIT {int(query.k)}"
    return sql, params


def filtered_rows_sql(query: Query, *, cap: int) -> tuple[str, list]:
    """How many of the version's rows pass the filters (counting at most ``cap``), and whether the
    search walks a style's own graph: one statement, one row ``(has_style_graph, rows)``.

    A filter of one style alone whose graph exists for this version counts as ``cap`` without
    counting: such a style holds at least ``RECOMMENDER_STYLE_INDEX_MIN_ROWS`` rows, and its graph
    is the fast path.
    """
    filters, searched = query.filters, target(query.kind)
    clauses, params = filter_clauses(query.kind, filters, query.exclude_ids, style_column=False)
    where = " AND ".join([f"e.model_version_id = {int(query.model_version.pk)}", *clauses])
    count = f"(SELECT count(*) FROM (SELECT 1 FROM {searched.table} e WHERE {where} LIMIT {int(cap)}) t)"
    if len(filters.style_ids) == 1 and not (filters.category_ids or filters.brand_ids):
        name = style_index_name(searched, query.model_version, filters.style_ids[0])
        has_graph = f"EXISTS ({INDEX_VALID_SQL} AND i.indisvalid)"
        sql = (
            f"WITH g AS (SELECT {has_graph} AS has_graph) "
            f"SELECT g.has_graph, CASE WHEN g.has_graph THEN {int(cap)} ELSE {count} END FROM g"
        )
        return sql, [name, *params]
    return f"SELECT false, {count}", params
