"""Per-model-version HNSW indexes on the catalog's embedding tables.

The vector columns have no fixed dimension (versions may differ), so each version gets a
partial *expression* index on ``(vector::halfvec(dim))`` restricted to its own rows. The
selectors order by exactly the same expression and filter on the same literal
``model_version_id``, which is what lets the planner match the partial index.

Precision (``RECOMMENDER_INDEX_PRECISION``): ``halfvec`` (default) stores the graph's vectors
in 16-bit floats: a third of the ``vector`` index's size, so more graph nodes per page and
fewer pages per search, with the ranking distance still computed in full precision; it also
lifts pgvector's 2,000-dimension HNSW limit on ``vector`` to 4,000. ``vector`` is the
full-precision alternative.

Build parameters (``RECOMMENDER_HNSW_M``, and per table ``ef_construction``: the registry's
``ef_construction_setting``): the item graph is probed once per query region, so it wants the
cheaper build that answers fastest; the snapshot regions' graph holds a look's overlapping,
near-duplicate windows and needs the wider build to keep item -> snapshots' recall. The
measurements behind the defaults are in docs/recommender.md.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence

from django.conf import settings
from django.db import connection

from catalog.embedding_targets import ITEM, TARGETS, EmbeddingTarget
from recommender.models import ModelVersion

logger = logging.getLogger(__name__)

# precision -> (SQL type of the indexed expression, operator class, index name tag)
PRECISIONS = {
    "halfvec": ("halfvec", "halfvec_cosine_ops", "hnsw16"),
    "vector": ("vector", "vector_cosine_ops", "hnsw"),
}


def index_precision() -> tuple[str, str, str]:
    """(type, opclass, tag) of the configured ``RECOMMENDER_INDEX_PRECISION``."""
    precision = settings.RECOMMENDER_INDEX_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"RECOMMENDER_INDEX_PRECISION must be one of {sorted(PRECISIONS)}, not {precision!r}")
    return PRECISIONS[precision]


def vector_index_names(*, model_version: ModelVersion) -> list[str]:
    """The index names for a version at the configured precision, one per embedding table (items first)."""
    tag = index_precision()[2]
    return [f"{target.index_prefix}_{tag}_mv{int(model_version.pk)}" for target in TARGETS.values()]


# An index's validity by name (no row: no such index); one %s parameter. Also used inside the
# search's filter count (recommender.selectors.similarity.sql).
INDEX_VALID_SQL = "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s"


def _index_valid(cursor, name: str) -> bool | None:
    """True/False for an existing index's validity, None when it does not exist."""
    cursor.execute(INDEX_VALID_SQL, [name])
    row = cursor.fetchone()
    return None if row is None else bool(row[0])


def vector_index_ensure(*, model_version: ModelVersion, concurrently: bool | None = None) -> list[str]:
    """Create the version's partial HNSW cosine indexes if missing; returns their names.

    Idempotent. ``CREATE INDEX CONCURRENTLY`` (the default outside a transaction) keeps the
    tables writable while the graph is built; an invalid index left by an interrupted
    concurrent build is dropped and rebuilt. Inside ``transaction.atomic`` (tests) the plain
    form is used, since CONCURRENTLY cannot run in a transaction block.

    Besides one index per table over all the version's rows, every style that holds between
    ``RECOMMENDER_STYLE_INDEX_MIN_ROWS`` rows and ``RECOMMENDER_STYLE_INDEX_MAX_SHARE`` of the
    version's rows of a table gets its own partial index (``... AND style_ids && '{id}'``): a
    one-style filter then walks a graph of that style's rows only, so it costs about what an
    unfiltered search does and is as accurate, where the iterative scan of the whole graph
    discards most rows it visits. Rarer styles are ranked exactly (``RECOMMENDER_EXACT_BELOW_ROWS``),
    commoner ones lose little to the iterative scan. Which indexes exist never changes an answer,
    only its speed: the style column is kept by the database (catalog migration 0004), and every
    index predicate is maintained by PostgreSQL on each write.
    """
    if not model_version.dim:
        raise ValueError(f"model version {model_version.pk} has no dim; it cannot be indexed")
    if concurrently is None:
        concurrently = not connection.in_atomic_block
    names = vector_index_names(model_version=model_version)
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Rows inserted earlier in this transaction leave deferred FK checks pending, and
            # CREATE INDEX refuses to run on a table with pending trigger events: check them now,
            # then defer again. Left immediate, the rest of the transaction would fail any cascade
            # over a nullable key, which Django orders on the assumption that checks are deferred.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for target, name in zip(TARGETS.values(), names, strict=True):
            _build(cursor, target, name, model_version, concurrently=concurrently)
            for style_id in _styles_worth_an_index(cursor, target, model_version):
                _build(
                    cursor,
                    target,
                    style_index_name(target, model_version, style_id),
                    model_version,
                    concurrently=concurrently,
                    predicate=style_clause(style_id),
                )
        _garment_indexes_ensure(cursor, model_version, concurrently=concurrently)
    return names


def kind_clause(category_ids: Sequence[int], alias: str = "") -> str:
    """``category_id = ANY('{a,b}'::bigint[])`` (an item vector row of one of these categories), as a garment
    group's index predicate or a look's query clause: written alike for the same sorted ids, so the planner
    matches the group's index."""
    ids = ",".join(str(int(i)) for i in sorted(set(category_ids)))
    return f"{alias + '.' if alias else ''}category_id = ANY('{{{ids}}}'::bigint[])"


def garment_index_name(model_version: ModelVersion, group: str, category_ids: Sequence[int]) -> str:
    """A garment group's item index; the name carries a digest of its categories, so a group whose
    categories changed (a category added below one of them) gets a new index and the old one goes."""
    ids = ",".join(str(int(i)) for i in sorted(set(category_ids)))
    slug = re.sub(r"[^a-z0-9]", "", group.lower())[:16]
    digest = zlib.crc32(ids.encode())
    return f"{ITEM.index_prefix}_{index_precision()[2]}_mv{int(model_version.pk)}_g{slug}_{digest:08x}"


def _garment_indexes_ensure(cursor, model_version: ModelVersion, *, concurrently: bool) -> None:
    """Each garment group holding at least ``RECOMMENDER_GARMENT_INDEX_MIN_ROWS`` of the version's item rows
    gets a partial HNSW index over its kind (:func:`kind_clause`): a look's garment then walks a graph of its
    own kind, where a walk of the whole graph post-filtered by the kind could miss the garment's product line
    altogether (docs/bench.md, "Lost walks"). The version's group indexes no group uses any more are dropped."""
    from catalog.selectors import category_ids_by_group

    version_id = int(model_version.pk)
    cursor.execute(
        f"SELECT category_id, count(*) FROM {ITEM.table} WHERE model_version_id = {version_id} "
        "AND category_id IS NOT NULL GROUP BY category_id"
    )
    rows = dict(cursor.fetchall())
    low = int(settings.RECOMMENDER_GARMENT_INDEX_MIN_ROWS)
    wanted = {}
    for group, ids in category_ids_by_group().items():
        if ids and sum(rows.get(i, 0) for i in ids) >= low:
            wanted[garment_index_name(model_version, group, ids)] = ids
    for name, ids in sorted(wanted.items()):
        _build(cursor, ITEM, name, model_version, concurrently=concurrently, predicate=kind_clause(ids))
    prefix = f"{ITEM.index_prefix}_{index_precision()[2]}_mv{version_id}_g"
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE %s", [prefix.replace("_", r"\_") + "%"]
    )
    for (name,) in cursor.fetchall():
        if name not in wanted:
            logger.info("dropping %s: its garment group's categories changed", name)
            cursor.execute(f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}IF EXISTS {name}")


def style_index_name(target: EmbeddingTarget, model_version: ModelVersion, style_id: int) -> str:
    return f"{target.index_prefix}_{index_precision()[2]}_mv{int(model_version.pk)}_s{int(style_id)}"


def _styles_worth_an_index(cursor, target: EmbeddingTarget, model_version: ModelVersion) -> list[int]:
    """Styles holding enough of the version's rows in this table for a graph of their own, but not most of them."""
    version_id = int(model_version.pk)
    cursor.execute(f"SELECT count(*) FROM {target.table} WHERE model_version_id = {version_id}")
    total = int(cursor.fetchone()[0])
    if not total:
        return []
    # Counted through the link table and the (model_version, owner) index, not by reading the
    # rows' style_ids: the same numbers (the column is derived from the links) without a heap scan.
    cursor.execute(
        f"SELECT l.style_id, count(*) FROM {target.style_links} l JOIN {target.table} e "
        f"ON e.{target.fk} = l.{target.fk} AND e.model_version_id = {version_id} GROUP BY l.style_id"
    )
    low, high = int(settings.RECOMMENDER_STYLE_INDEX_MIN_ROWS), float(settings.RECOMMENDER_STYLE_INDEX_MAX_SHARE)
    return sorted(int(style) for style, rows in cursor.fetchall() if rows >= low and rows <= high * total)


def _build(
    cursor,
    target: EmbeddingTarget,
    name: str,
    model_version: ModelVersion,
    *,
    concurrently: bool,
    predicate: str | None = None,
) -> None:
    valid = _index_valid(cursor, name)
    if valid:
        return
    if valid is False:
        logger.warning("dropping invalid index %s left by an interrupted build", name)
        cursor.execute(f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}IF EXISTS {name}")
    dim = int(model_version.dim)
    m = int(settings.RECOMMENDER_HNSW_M)
    ef_construction = int(getattr(settings, target.ef_construction_setting))
    sql_type, opclass, _tag = index_precision()
    logger.info("building %s (dim=%d, m=%d, ef_construction=%d)", name, dim, m, ef_construction)
    cursor.execute(
        f"CREATE INDEX {'CONCURRENTLY ' if concurrently else ''}IF NOT EXISTS {name} "
        f"ON {target.table} USING hnsw ((vector::{sql_type}({dim})) {opclass}) "
        f"WITH (m = {m}, ef_construction = {ef_construction}) "
        f"WHERE {index_predicate(model_version, predicate)}"
    )


def index_predicate(model_version: ModelVersion, predicate: str | None = None) -> str:
    """The partial index's WHERE clause (the version's rows, and ``predicate``: a style's or a garment group's
    clause); the selectors write exactly these clauses so the planner can match it."""
    clause = f"model_version_id = {int(model_version.pk)}"
    if predicate is not None:
        clause += f" AND {predicate}"
    return clause


def style_clause(style_ids: int | Sequence[int], alias: str = "") -> str:
    """``style_ids && '{a,b}'::bigint[]`` (the row has one of these styles), as index predicate or
    query clause; for one style it is written exactly like that style's partial index predicate."""
    ids = [style_ids] if isinstance(style_ids, int) else list(style_ids)
    return f"{alias + '.' if alias else ''}style_ids && '{{{','.join(str(int(i)) for i in ids)}}}'::bigint[]"


def vector_index_drop(*, model_version: ModelVersion, concurrently: bool | None = None) -> None:
    """Drop the version's HNSW indexes at every precision (idempotent), e.g. when a version is retired."""
    if concurrently is None:
        concurrently = not connection.in_atomic_block
    names = [
        f"{t.index_prefix}_{tag}_mv{int(model_version.pk)}"
        for t in TARGETS.values()
        for _, _, tag in PRECISIONS.values()
    ]
    with connection.cursor() as cursor:
        # and the per-style ones (name_s<style id>) and the garment groups' (name_g<group>_<digest>)
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE ANY(%s)",
            [[name.replace("_", r"\_") + rf"\_{kind}%" for name in names for kind in "sg"]],
        )
        names += [row[0] for row in cursor.fetchall()]
        for name in names:
            cursor.execute(f"DROP INDEX {'CONCURRENTLY ' if concurrently else ''}IF EXISTS {name}")
