"""Per-version partial HNSW indexes: created, valid, matched by the selectors' SQL, dropped."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from recommender.indexes import vector_index_drop, vector_index_ensure, vector_index_names


def index_defs(version) -> dict[str, tuple[str, bool]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ANY(%s)",
            [vector_index_names(model_version=version)],
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
