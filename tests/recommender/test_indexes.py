"""Per-version partial HNSW indexes: created, valid, matched by the selectors' SQL, dropped."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from recommender.indexes import vector_index_drop, vector_index_ensure, vector_index_names


def index_defs(version=None, names=None) -> dict[str, tuple[str, bool]]:
    """(definition, valid) of the version's indexes, or of the indexes ``names``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            [names if names is not None else vector_index_names(model_version=version)],
        )
        return {name: (definition, valid) for name, definition, valid in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_ensure_builds_concurrently_idempotently_and_drop_removes(catalog_rows, rng):
    version = catalog_rows.version(dim=8, status="ready")  # calls vector_index_ensure outside a transaction
    items = catalog_rows.items(5)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])

    assert vector_index_ensure(model_version=version) == vector_index_names(model_version=version)
    defs = index_defs(version)

    assert set(defs) == {f"catalog_itememb_hnsw16_mv{version.pk}", f"catalog_snapemb_hnsw16_mv{version.pk}"}
    build = {
        "itememb": settings.RECOMMENDER_HNSW_EF_CONSTRUCTION,
        "snapemb": settings.RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS,
    }
    for name, (definition, valid) in defs.items():
        assert valid
        assert "USING hnsw (((vector)::halfvec(8)) halfvec_cosine_ops)" in definition
        assert f"m='{settings.RECOMMENDER_HNSW_M}'" in definition
        assert f"ef_construction='{build[name.split('_')[1]]}'" in definition
        assert f"WHERE (model_version_id = {version.pk})" in definition
    vector_index_drop(model_version=version)
    assert index_defs(version) == {}
    vector_index_drop(model_version=version)  # idempotent


@pytest.mark.django_db
def test_full_precision_indexes_are_a_setting_away(catalog_rows, settings, rng):
    from recommender.selectors import item_list_for_snapshot

    settings.RECOMMENDER_INDEX_PRECISION = "vector"
    version = catalog_rows.version(dim=8)
    items = catalog_rows.items(10)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    defs = index_defs(version)

    assert set(defs) == {f"catalog_itememb_hnsw_mv{version.pk}", f"catalog_snapemb_hnsw_mv{version.pk}"}
    assert all("USING hnsw (((vector)::vector(8)) vector_cosine_ops)" in d for d, _ in defs.values())
    assert len(item_list_for_snapshot(vectors=[rng.normal(size=8).tolist()])) == 6
    settings.RECOMMENDER_INDEX_PRECISION = "float8"
    with pytest.raises(ValueError, match="RECOMMENDER_INDEX_PRECISION"):
        vector_index_names(model_version=version)


@pytest.mark.django_db
def test_an_invalid_index_is_rebuilt_and_a_version_without_dim_is_refused(catalog_rows):
    from recommender.models import ModelVersion

    version = catalog_rows.version(dim=4)
    name = vector_index_names(model_version=version)[0]
    with connection.cursor() as cursor:  # simulate an interrupted CREATE INDEX CONCURRENTLY
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name])
    assert index_defs(version)[name][1] is False

    vector_index_ensure(model_version=version)

    assert index_defs(version)[name][1] is True
    with pytest.raises(ValueError, match="no dim"):
        vector_index_ensure(model_version=ModelVersion.objects.create(name="nodim", backbone="x", dim=None))


@pytest.mark.django_db
def test_a_style_with_enough_rows_gets_its_own_graph_and_a_one_style_filter_walks_it(catalog_rows, settings, rng):
    from catalog.embedding_targets import ITEM
    from recommender.indexes import style_index_name
    from recommender.selectors import Filters, nearest_ids, similar_sql, vector_cursor
    from recommender.selectors.similarity.sql import filtered_rows_sql
    from recommender.selectors.similarity.types import Query
    from tests import factories as f

    settings.RECOMMENDER_STYLE_INDEX_MIN_ROWS = 30
    settings.RECOMMENDER_STYLE_INDEX_MAX_SHARE = 0.5
    version = catalog_rows.version(dim=8)
    common, rare, most = f.make_style("Common"), f.make_style("Rare"), f.make_style("Most")
    items = (
        catalog_rows.items(40, styles=[common])
        + catalog_rows.items(10, styles=[rare])
        + catalog_rows.items(60, styles=[most])
    )
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    vector_index_ensure(model_version=version)

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [f"catalog_itememb_%_mv{version.pk}_s%"])
        built = {row[0] for row in cursor.fetchall()}
    # 40 of 110 rows: its own graph; 10 rows: too few (ranked exactly); 60 of 110: more than half
    assert built == {style_index_name(ITEM, version, common.pk)}

    query = [rng.normal(size=8).tolist()]
    kwargs = dict(kind="item", model_version=version, k=6, filters=Filters(style_ids=(common.pk,)), query_vectors=query)
    sql, params = similar_sql(**kwargs)
    with vector_cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # the catalog-scale plan on a small table
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {style_index_name(ITEM, version, common.pk)}" in plan, plan
    counted = {}
    with vector_cursor() as cursor:  # its rows need no counting to choose the graph over an exact scan
        for style in (common, rare):
            query = Query(kind="item", model_version=version, k=6, filters=Filters(style_ids=(style.pk,)))
            cursor.execute(*filtered_rows_sql(query, cap=1000))
            has_graph, rows = cursor.fetchone()
            counted[style.pk] = (rows, has_graph)
    assert counted == {common.pk: (1000, True), rare.pk: (10, False)}
    graph = nearest_ids(**kwargs)
    exact = nearest_ids(**kwargs, exact=True)
    assert [i for i, _ in graph] == [i for i, _ in exact]
    assert {i for i, _ in graph} <= {item.pk for item in items[:40]}

    vector_index_drop(model_version=version)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE %s", [f"catalog_%_mv{version.pk}%"])
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db
def test_a_walk_on_a_style_graph_is_narrower_by_the_style_factor(catalog_rows, settings, rng):
    from recommender.selectors import Filters, nearest_ids
    from tests import factories as f

    settings.RECOMMENDER_STYLE_INDEX_MIN_ROWS = 30
    settings.RECOMMENDER_EXACT_BELOW_ROWS = 20
    settings.RECOMMENDER_EF_SEARCH, settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS = 50, 300
    settings.RECOMMENDER_EF_SEARCH_STYLE_FACTOR = 0.4
    version = catalog_rows.version(dim=8, max_regions=1)
    common, other = f.make_style("Common"), f.make_style("Other")
    items = catalog_rows.items(40, styles=[common]) + catalog_rows.items(40, styles=[other])
    looks = catalog_rows.snapshots(40, styles=[common]) + catalog_rows.snapshots(40, styles=[other])
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    for look in looks:
        catalog_rows.snapshot_vectors(version, look, rng.normal(size=(1, 8)))
    vector_index_ensure(model_version=version)

    def ef_used(kind, filters):
        # The selector's SET LOCAL lasts until the test's own transaction ends.
        nearest_ids(kind=kind, model_version=version, k=6, filters=filters, query_vectors=[rng.normal(size=8).tolist()])
        with connection.cursor() as cursor:
            cursor.execute("SHOW hnsw.ef_search")
            return int(cursor.fetchone()[0])

    one_style, two_styles = Filters(style_ids=(common.pk,)), Filters(style_ids=(common.pk, other.pk))
    assert [ef_used("item", flt) for flt in (Filters(), one_style, two_styles)] == [50, 20, 50]
    assert [ef_used("snapshot", flt) for flt in (Filters(), one_style, two_styles)] == [300, 120, 300]


@pytest.mark.django_db
def test_the_hourly_check_gives_a_grown_style_its_graph_on_the_active_version(catalog_rows, settings, rng):
    from catalog.embedding_targets import ITEM
    from recommender.indexes import style_index_name
    from tests import factories as f
    from workers.tasks import style_graphs_ensure

    settings.RECOMMENDER_STYLE_INDEX_MIN_ROWS = 20
    version = catalog_rows.version(dim=8, status="active")
    items = catalog_rows.items(60)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    vector_index_ensure(model_version=version)
    grown = f.make_style("Grown")
    name = style_index_name(ITEM, version, grown.pk)
    assert index_defs(names=[name]) == {}

    for item in items[:25]:  # the style grows past the threshold after the version was indexed
        item.styles.add(grown)
    assert style_graphs_ensure() == {"version": version.pk}

    assert index_defs(names=[name])[name][1] is True


@pytest.mark.django_db
def test_a_build_inside_a_transaction_leaves_foreign_key_checks_deferred(catalog_rows):
    from catalog.models import Item

    version = catalog_rows.version(dim=8, status="ready")
    (item,) = catalog_rows.items(1)
    vector_index_ensure(model_version=version)  # inside the test's transaction: pending checks run at once

    # Deferred again, a key that points nowhere is checked at commit, not by the statement: Django
    # deletes a cascade over a nullable key in no particular order on that assumption (a schedule
    # before its periodic tasks). Left immediate, this update would raise IntegrityError.
    Item.objects.filter(pk=item.pk).update(brand_id=2**31 - 1)
    Item.objects.filter(pk=item.pk).update(brand_id=None)
