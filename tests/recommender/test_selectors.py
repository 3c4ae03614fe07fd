"""Similarity selectors on real PostgreSQL + pgvector, against a NumPy brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from recommender.indexes import vector_index_names
from recommender.selectors import (
    Filters,
    NoActiveModel,
    NotEmbedded,
    SearchOptions,
    filters_resolve,
    item_list_for_snapshot,
    nearest_ids,
    similar_sql,
    snapshot_list_for_item,
    vector_cursor,
)
from tests import factories as f
from tests.recommender.conftest import unit

pytestmark = pytest.mark.django_db


def brute_items(query_regions, item_vectors: dict[int, list[float]], k: int) -> list[int]:
    """Reference: score = max over regions of cosine; best first, ties by id."""
    q = np.asarray([unit(r) for r in query_regions])
    scored = [(-(q @ np.asarray(unit(v))).max(), i) for i, v in item_vectors.items()]
    return [i for _, i in sorted(scored)[:k]]


def test_items_for_a_snapshot_are_the_exact_top_k_by_best_region(catalog_rows, rng):
    version = catalog_rows.version(dim=8, max_regions=3)
    items = catalog_rows.items(40)
    vectors = {item.pk: rng.normal(size=8).tolist() for item in items}
    catalog_rows.item_vectors(version, [(item, vectors[item.pk]) for item in items])
    snapshot = catalog_rows.snapshots(1)[0]
    regions = rng.normal(size=(3, 8)).tolist()
    catalog_rows.snapshot_vectors(version, snapshot, regions)

    matches = item_list_for_snapshot(snapshot_id=snapshot.pk)

    assert len(matches) == 6
    assert [m.item.pk for m in matches] == brute_items(regions, vectors, 6)
    distances = [m.distance for m in matches]
    assert distances == sorted(distances)
    best = max(float(np.dot(unit(r), unit(vectors[matches[0].item.pk]))) for r in regions)
    assert matches[0].score == pytest.approx(best, abs=1e-5)


def test_a_region_match_beats_a_mediocre_global_match(catalog_rows):
    version = catalog_rows.version(dim=4, max_regions=2)
    near_region, near_global = catalog_rows.items(2)
    catalog_rows.item_vectors(version, [(near_region, [0, 1, 0, 0]), (near_global, [0.6, 0.0, 0.8, 0])])
    snapshot = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(version, snapshot, [[1, 0, 0, 0], [0, 1, 0.05, 0]])

    matches = item_list_for_snapshot(snapshot_id=snapshot.pk, k=2)

    assert [m.item for m in matches] == [near_region, near_global]
    assert matches[0].score == pytest.approx(1 / np.sqrt(1 + 0.05**2), abs=1e-5)


def test_raw_vectors_give_the_same_answer_as_the_stored_snapshot(catalog_rows, rng):
    version = catalog_rows.version(dim=8, max_regions=2)
    items = catalog_rows.items(20)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    snapshot = catalog_rows.snapshots(1)[0]
    regions = [unit(r) for r in rng.normal(size=(2, 8))]
    catalog_rows.snapshot_vectors(version, snapshot, regions)

    stored = item_list_for_snapshot(snapshot_id=snapshot.pk)
    uploaded = item_list_for_snapshot(vectors=regions)

    assert [m.item.pk for m in uploaded] == [m.item.pk for m in stored]
    assert [m.distance for m in uploaded] == pytest.approx([m.distance for m in stored], abs=1e-5)


def test_only_the_active_versions_vectors_are_searched(catalog_rows, rng):
    active = catalog_rows.version(dim=8)
    other = catalog_rows.version(dim=8, status="ready")
    items = catalog_rows.items(12)
    in_active, only_in_other = items[:8], items[8:]
    active_vectors = {item.pk: rng.normal(size=8).tolist() for item in in_active}
    catalog_rows.item_vectors(active, [(item, active_vectors[item.pk]) for item in in_active])
    query = [1, 0, 0, 0, 0, 0, 0, 0]
    # The other version holds perfect matches for every item: they must not leak in.
    catalog_rows.item_vectors(other, [(item, query) for item in items])
    snapshot = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(active, snapshot, [query])
    catalog_rows.snapshot_vectors(other, snapshot, [query])

    matches = item_list_for_snapshot(snapshot_id=snapshot.pk)

    assert {m.item.pk for m in matches} <= {i.pk for i in in_active}
    assert not {m.item.pk for m in matches} & {i.pk for i in only_in_other}
    assert [m.item.pk for m in matches] == brute_items([query], active_vectors, 6)
    assert all(m.distance > 1e-4 for m in matches)


def test_excluded_ids_never_come_back(catalog_rows, rng):
    version = catalog_rows.version(dim=8)
    items = catalog_rows.items(10)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    snapshot = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(version, snapshot, [rng.normal(size=8)])
    first = item_list_for_snapshot(snapshot_id=snapshot.pk, k=3)

    again = item_list_for_snapshot(snapshot_id=snapshot.pk, k=6, exclude_ids=[first[0].item.pk])

    assert len(again) == 6
    assert first[0].item.pk not in {m.item.pk for m in again}
    assert again[0].item == first[1].item


@pytest.fixture
def crowded(catalog_rows, rng):
    """1,500 items close to the query and 12 far ones carrying every filter (style, child category, brand)."""
    from tests import factories as f

    version = catalog_rows.version(dim=16)
    shoes = f.make_category("Shoes")
    sneakers = f.make_category("Sneakers", parent=shoes)
    rare_style, common_style = f.make_style("Rare"), f.make_style("Common")
    brand = f.make_brand("Acme")
    query = np.zeros(16)
    query[0] = 1.0
    crowd = catalog_rows.items(1500, styles=[common_style])
    chosen = catalog_rows.items(12, styles=[rare_style], category=sneakers, brand=brand, name="Chosen")
    noise = rng.normal(scale=0.05, size=(len(crowd), 16))
    pairs = [(item, query + noise[n]) for n, item in enumerate(crowd)]
    far = rng.normal(size=(len(chosen), 16))
    far[:, 0] = -1.0  # the chosen items point away from the query
    pairs += [(item, far[n]) for n, item in enumerate(chosen)]
    catalog_rows.item_vectors(version, pairs)
    return {"version": version, "query": query.tolist(), "chosen": {i.pk for i in chosen}, "shoes": shoes}


@pytest.mark.parametrize(
    "selection", [{"styles": "rare"}, {"categories": "shoes"}, {"categories": "sneakers"}, {"brands": "acme"}]
)
def test_a_selective_filter_still_returns_k_in_distance_order(crowded, selection):
    filters = filters_resolve(**selection)

    matches = item_list_for_snapshot(vectors=[crowded["query"]], filters=filters)

    assert len(matches) == 6
    assert {m.item.pk for m in matches} <= crowded["chosen"]
    assert [m.distance for m in matches] == sorted(m.distance for m in matches)


@pytest.fixture
def planner_prefers_the_index(crowded):
    """With ~1.5k rows the planner would rightly sort the 12 filtered rows exactly; at catalog scale it
    walks the HNSW graph. Penalise sorts for this transaction so the small test table takes the big-table path."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        yield crowded


def test_the_iterative_scan_is_what_finds_filtered_rows_beyond_the_first_graph_walk(planner_prefers_the_index):
    crowded = planner_prefers_the_index
    version, filters = crowded["version"], filters_resolve(styles="rare")
    common = dict(kind="item", model_version=version, k=6, filters=filters, query_vectors=[crowded["query"]])
    sql, params = similar_sql(**common)
    with vector_cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"Index Scan using {vector_index_names(model_version=version)[0]}" in plan, plan

    def run(mode: str) -> list[tuple[int, float]]:
        options = SearchOptions.from_settings(
            iterative_scan=mode, ef_search=40, exact_fallback=False, exact_below_rows=0
        )
        return nearest_ids(**common, options=options)

    plain, relaxed, strict = run("off"), run("relaxed_order"), run("strict_order")

    assert len(plain) < 6  # the default walk stops after ef_search candidates, all filtered out
    assert len(relaxed) == 6 and len(strict) == 6
    assert {i for i, _ in relaxed} <= crowded["chosen"]
    assert [i for i, _ in strict] == [i for i, _ in relaxed]
    exact = nearest_ids(**common, exact=True)
    assert [i for i, _ in exact] == [i for i, _ in strict]


def test_a_filtered_query_keeps_returning_k_after_many_runs(crowded):
    # psycopg 3 would switch to a prepared (generic) plan after 5 runs; prepare_threshold=None prevents it.
    filters = filters_resolve(styles="rare")
    counts = {len(item_list_for_snapshot(vectors=[crowded["query"]], filters=filters)) for _ in range(12)}
    assert counts == {6}


def test_fewer_matching_rows_than_k_returns_all_of_them(crowded):
    filters = filters_resolve(styles="rare")
    matches = item_list_for_snapshot(vectors=[crowded["query"]], filters=filters, k=20)
    assert {m.item.pk for m in matches} == crowded["chosen"]


def test_snapshots_for_an_item_rank_by_best_region_and_are_distinct(catalog_rows):
    version = catalog_rows.version(dim=4, max_regions=3)
    item = catalog_rows.items(1)[0]
    catalog_rows.item_vectors(version, [(item, [1, 0, 0, 0])])
    looks = catalog_rows.snapshots(8)
    hidden = catalog_rows.snapshots(1, is_published=False)[0]
    # The first look has three regions all near the item: it must count once.
    catalog_rows.snapshot_vectors(version, looks[0], [[1, 0.01, 0, 0], [1, 0.02, 0, 0], [1, 0.03, 0, 0]])
    for n, look in enumerate(looks[1:], start=1):
        catalog_rows.snapshot_vectors(version, look, [[0, 0, 1, 0], [1, 0.1 * n, 0, 0]])  # region 1 matches
    catalog_rows.snapshot_vectors(version, hidden, [[1, 0, 0, 0]])

    matches = snapshot_list_for_item(item_id=item.pk)

    assert [m.snapshot for m in matches] == looks[:6]
    assert hidden not in [m.snapshot for m in matches]
    assert matches[1].score == pytest.approx(1 / np.sqrt(1.01), abs=1e-5)


@pytest.mark.parametrize("mode", ["relaxed_order", "strict_order", "off"])
def test_snapshots_crowding_the_nearest_region_rows_do_not_hide_the_rest(catalog_rows, rng, mode):
    """Three looks with 8 regions each nearer than any other look fill the first 3k = 18 region rows
    with 3 distinct looks: the selector must read on and still return the exact top 6."""
    version = catalog_rows.version(dim=8, max_regions=8)
    item = catalog_rows.items(1)[0]
    query = np.eye(8)[0]
    catalog_rows.item_vectors(version, [(item, query)])
    crowding = catalog_rows.snapshots(3)
    others = catalog_rows.snapshots(10)
    for look in crowding:
        catalog_rows.snapshot_vectors(version, look, [query + rng.normal(scale=0.01, size=8) for _ in range(8)])
    for n, look in enumerate(others, start=1):
        far = [np.eye(8)[1 + r % 7] for r in range(7)]
        catalog_rows.snapshot_vectors(version, look, [query + 0.1 * n * np.eye(8)[1], *far])

    options = SearchOptions.from_settings(iterative_scan=mode, ef_search=10, exact_fallback=False)
    matches = snapshot_list_for_item(item_id=item.pk, options=options)
    exact = nearest_ids(
        kind="snapshot", model_version=version, k=6, filters=Filters(), query_from=("item", item.pk), exact=True
    )

    got = [m.snapshot.pk for m in matches]
    assert got == [i for i, _ in exact]
    assert set(got[:3]) == {s.pk for s in crowding} and got[3:] == [s.pk for s in others[:3]]


def test_item_to_snapshots_reads_the_region_stream_only_until_k_looks_are_named(catalog_rows, monkeypatch):
    """40 looks whose nearest regions are all distinct: the first batch (3k rows) already names 6 looks
    and nothing more is fetched; the same search over crowded looks must read on."""
    import psycopg

    version = catalog_rows.version(dim=4, max_regions=4)
    item = catalog_rows.items(1)[0]
    catalog_rows.item_vectors(version, [(item, [1, 0, 0, 0])])
    for n, look in enumerate(catalog_rows.snapshots(40), start=1):
        catalog_rows.snapshot_vectors(version, look, [[1, 0.02 * n, 0, 0], *([[0, 0, 1, 0.1 * r] for r in range(3)])])
    fetches: list[int] = []
    fetchmany = psycopg.ServerCursor.fetchmany

    def counting(self, size=0):
        rows = fetchmany(self, size)
        fetches.append(len(rows))
        return rows

    monkeypatch.setattr(psycopg.ServerCursor, "fetchmany", counting)
    options = SearchOptions.from_settings(iterative_scan="strict_order", ef_search=40)

    matches = snapshot_list_for_item(item_id=item.pk, options=options)

    assert len(matches) == 6
    assert fetches == [18]
    exact = nearest_ids(
        kind="snapshot", model_version=version, k=6, filters=Filters(), query_from=("item", item.pk), exact=True
    )
    assert [m.snapshot.pk for m in matches] == [i for i, _ in exact]


def test_snapshot_queries_use_the_configured_region_subset_and_item_queries_every_region(catalog_rows, settings):
    """RECOMMENDER_SNAPSHOT_QUERY_REGIONS=multiscale16 over a multiscale32 version: region 15 (not in the
    subset) does not query the item index, but is still stored and still matched by item -> snapshots."""
    from ml.regions import subset_rows

    settings.RECOMMENDER_SNAPSHOT_QUERY_REGIONS = "multiscale16"
    assert 15 not in subset_rows("multiscale16", of="multiscale32")
    version = catalog_rows.version(dim=8, max_regions=32)
    version.config = {"regions": "multiscale32"}
    version.save(update_fields=["config"])
    only_region_15, plain = catalog_rows.items(2)
    catalog_rows.item_vectors(version, [(only_region_15, np.eye(8)[3]), (plain, np.eye(8)[0])])
    look = catalog_rows.snapshots(1)[0]
    regions = [np.eye(8)[0] + 0.01 * r * np.eye(8)[1] for r in range(32)]
    regions[15] = np.eye(8)[3]
    catalog_rows.snapshot_vectors(version, look, regions)

    by_id = item_list_for_snapshot(snapshot_id=look.pk, k=2)
    uploaded = item_list_for_snapshot(vectors=[unit(v) for v in regions], k=2)
    looks = [m.snapshot for m in snapshot_list_for_item(item_id=only_region_15.pk, k=1)]
    settings.RECOMMENDER_SNAPSHOT_QUERY_REGIONS = ""
    every_region = item_list_for_snapshot(snapshot_id=look.pk, k=2)

    for matches in (by_id, uploaded):  # region 15 is not asked: the item it shows scores like any other region
        assert [m.item for m in matches] == [plain, only_region_15]
        assert matches[0].score == pytest.approx(1.0, abs=1e-6) and matches[1].score < 0.5
    assert looks == [look]  # stored region 15 still answers item -> snapshots
    assert {m.item for m in every_region} == {plain, only_region_15}
    assert min(m.score for m in every_region) == pytest.approx(1.0, abs=1e-6)  # now region 15 finds it


def test_snapshot_filters_style_brand_and_curated_category(catalog_rows, rng):
    from catalog.models import PostItem
    from tests import factories as f

    version = catalog_rows.version(dim=8, max_regions=2)
    item = catalog_rows.items(1)[0]
    catalog_rows.item_vectors(version, [(item, [1, 0, 0, 0, 0, 0, 0, 0])])
    boho, acme = f.make_style("Boho"), f.make_brand("Acme")
    bags = f.make_category("Bags")
    totes = f.make_category("Totes", parent=bags)
    plain = catalog_rows.snapshots(30)
    styled = catalog_rows.snapshots(7, styles=[boho], brands=[acme])
    tote = catalog_rows.items(1, category=totes)[0]
    PostItem.objects.bulk_create([PostItem(snapshot=s, item=tote) for s in styled])
    for look in plain:
        catalog_rows.snapshot_vectors(version, look, [[1, *rng.normal(scale=0.05, size=7)]] * 2)
    for look in styled:
        catalog_rows.snapshot_vectors(version, look, [rng.normal(size=8), rng.normal(size=8)])

    for selection in ({"styles": "boho"}, {"brands": "acme"}, {"categories": "bags"}):
        matches = snapshot_list_for_item(item_id=item.pk, filters=filters_resolve(**selection))
        assert len(matches) == 6, selection
        assert {m.snapshot.pk for m in matches} <= {s.pk for s in styled}, selection


def test_no_active_version_and_missing_vectors_are_reported(catalog_rows, rng):
    snapshot = catalog_rows.snapshots(1)[0]
    with pytest.raises(NoActiveModel):
        item_list_for_snapshot(snapshot_id=snapshot.pk)
    version = catalog_rows.version(dim=8)
    items = catalog_rows.items(3)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    with pytest.raises(NotEmbedded):
        item_list_for_snapshot(snapshot_id=snapshot.pk)
    with pytest.raises(ValueError, match="8 dimensions"):
        item_list_for_snapshot(vectors=[[1.0, 2.0]])


def test_query_expansion_is_off_by_default_and_changes_nothing_then(catalog_rows, rng):
    version = catalog_rows.version(dim=8)
    items = catalog_rows.items(15)
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    query = [unit(rng.normal(size=8))]

    default = item_list_for_snapshot(vectors=query)
    expanded = item_list_for_snapshot(vectors=query, expansion_n=2)

    assert [m.item.pk for m in default] == [m.item.pk for m in item_list_for_snapshot(vectors=query, expansion_n=0)]
    assert len(expanded) == 6
    assert expanded[0].item == default[0].item  # the best match only gets closer to the expanded query


def test_unknown_filter_slug_is_an_error(db):
    from recommender.selectors import UnknownFilter

    with pytest.raises(UnknownFilter, match="nope"):
        filters_resolve(styles=["nope"])
    assert filters_resolve() == Filters()


@pytest.mark.parametrize(
    ("given", "kind", "max_length"),
    [
        ({"styles": "bo\x00ho"}, "style", 80),
        ({"categories": ["tops", "a\x00b"]}, "category", 80),
        ({"brands": "x" * 121}, "brand", 120),
        ({"styles": "boho", "brands": "Acme & Co"}, "brand", 120),
        ({"categories": "../tops"}, "category", 80),
    ],
)
def test_a_value_that_cannot_be_a_slug_is_refused_before_any_query(
    db, django_assert_num_queries, given, kind, max_length
):
    from recommender.selectors import InvalidFilter

    with django_assert_num_queries(0), pytest.raises(InvalidFilter) as refused:
        filters_resolve(**given)
    assert (refused.value.kind, refused.value.max_length) == (kind, max_length)
    assert str(refused.value).startswith(f"invalid {kind}: a slug has only letters")
    assert len(refused.value.value) <= 100


def test_filtered_queries_scan_few_rows_exactly_and_walk_the_graph_for_many(crowded):
    filters = filters_resolve(brands="acme")
    common = dict(kind="item", model_version=crowded["version"], k=6, filters=filters, query_vectors=[crowded["query"]])
    exact = nearest_ids(**common, exact=True)

    few_rows = nearest_ids(**common, options=SearchOptions.from_settings(exact_below_rows=2000))
    graph = nearest_ids(**common, options=SearchOptions.from_settings(exact_below_rows=5, exact_fallback=False))

    assert [i for i, _ in few_rows] == [i for i, _ in exact]
    assert [i for i, _ in graph] == [i for i, _ in exact]
    assert [d for _, d in graph] == pytest.approx([d for _, d in exact], abs=1e-6)


def _field_values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def test_results_come_with_their_catalog_rows_from_the_search_statement(reco_catalog):
    from catalog.models import Item, Snapshot

    version, look = reco_catalog["version"], reco_catalog["looks"][0]
    Item.objects.filter(pk=reco_catalog["items"][20].pk).update(price="19.90", product_url="https://shop.example/x")

    # snapshot -> items: two statements (the settings, then the search, which also reads each item's
    # row with its brand and category) in one transaction (a savepoint here), none afterwards for them
    with CaptureQueriesContext(connection) as captured:
        matches = item_list_for_snapshot(snapshot_id=look.pk, k=24, model_version=version)
        for match in matches:
            _ = (match.item.brand, match.item.category)
    statements = [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2 and statements[0].startswith("SELECT set_config(")
    assert "catalog_brand" in statements[1] and "catalog_category" in statements[1]

    assert len(matches) == 24
    orm = Item.objects.select_related("brand", "category").in_bulk([m.item.pk for m in matches])
    for match in matches:
        assert _field_values(match.item) == _field_values(orm[match.item.pk])
        assert match.item.brand == orm[match.item.pk].brand
        assert match.item.category == orm[match.item.pk].category
        if match.item.brand is not None:
            assert _field_values(match.item.brand) == _field_values(orm[match.item.pk].brand)
        assert match.item._state.adding is False and match.item._state.db == "default"
    assert {m.item.brand.slug for m in matches if m.item.brand} == {"acme"}
    assert {m.item.category.slug for m in matches if m.item.category} == {reco_catalog["shirts"].slug}
    assert matches[0].item.created_at.tzinfo is not None

    # item -> snapshots (read as a stream of ids) and several query vectors (the grouped statement) give
    # the same rows the ORM does
    looks = snapshot_list_for_item(item_id=reco_catalog["items"][0].pk, k=10, model_version=version)
    uploaded = snapshot_list_for_item(vectors=[[1.0] * 8, [0.5, -1, 0, 0, 1, 0, 0, 2]], k=10, model_version=version)
    for result in (looks, uploaded):
        assert len(result) == 10
        orm_looks = Snapshot.objects.in_bulk([m.snapshot.pk for m in result])
        assert all(_field_values(m.snapshot) == _field_values(orm_looks[m.snapshot.pk]) for m in result)


@pytest.fixture
def split_searches(catalog_rows, rng, monkeypatch):
    """A 3-region version (committed: a transactional test), and a count of the shares run on helpers."""
    from recommender.selectors.similarity import execution

    version = catalog_rows.version(dim=8, max_regions=3)
    items = catalog_rows.items(30, styles=[f.make_style("Street")]) + catalog_rows.items(30)
    vectors = {item.pk: rng.normal(size=8).tolist() for item in items}
    catalog_rows.item_vectors(version, [(item, vectors[item.pk]) for item in items])
    look = catalog_rows.snapshots(1)[0]
    regions = rng.normal(size=(3, 8)).tolist()
    catalog_rows.snapshot_vectors(version, look, regions)
    calls = []
    real = execution._share_elsewhere

    def counted(share, *args):
        calls.append(share)
        return real(share, *args)

    monkeypatch.setattr(execution, "_share_elsewhere", counted)
    return {"version": version, "look": look, "regions": regions, "vectors": vectors, "items": items, "calls": calls}


@pytest.mark.django_db(transaction=True)
def test_a_search_outside_a_transaction_shares_its_probes_with_a_helper_connection(split_searches, settings):
    s = split_searches
    settings.RECOMMENDER_PROBE_CONNECTIONS = 2
    street = {item.pk for item in s["items"][:30]}
    graph_walk = SearchOptions.from_settings(exact_below_rows=0)

    by_id = item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])
    uploaded = item_list_for_snapshot(vectors=s["regions"], k=6, model_version=s["version"])
    styled = item_list_for_snapshot(
        snapshot_id=s["look"].pk,
        k=6,
        filters=filters_resolve(styles="street"),
        model_version=s["version"],
        options=graph_walk,
    )

    assert [len(c.regions if c.regions is not None else c.vectors) for c in s["calls"]] == [1, 1, 1]  # 3: 2 + 1
    expected = brute_items(s["regions"], s["vectors"], 6)
    assert [m.item.pk for m in by_id] == expected
    assert [m.item.pk for m in uploaded] == expected
    assert [m.item.pk for m in styled] == brute_items(s["regions"], {i: s["vectors"][i] for i in street}, 6)
    assert all(m.item.name for m in by_id)  # rows read by either connection
    distances = [m.distance for m in by_id]
    assert distances == sorted(distances)

    settings.RECOMMENDER_PROBE_CONNECTIONS = 1
    assert [m.item.pk for m in item_list_for_snapshot(snapshot_id=s["look"].pk, model_version=s["version"])] == expected
    assert len(s["calls"]) == 3  # not shared


@pytest.mark.django_db(transaction=True)
def test_a_failing_helper_connection_costs_the_search_nothing_but_time(split_searches, settings, monkeypatch, caplog):
    from django.db import OperationalError

    from recommender.selectors.similarity import execution

    s = split_searches
    settings.RECOMMENDER_PROBE_CONNECTIONS = 3

    def broken(share, *args):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(execution, "_share_elsewhere", broken)
    matches = item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])

    assert [m.item.pk for m in matches] == brute_items(s["regions"], s["vectors"], 6)
    assert "running it here" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_busy_helper_is_not_waited_for(split_searches, settings):
    from recommender.selectors.similarity import fanout

    s = split_searches
    settings.RECOMMENDER_PROBE_CONNECTIONS = 2
    item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])  # creates the helper
    assert len(s["calls"]) == 1
    helper = fanout._helpers[0]
    with helper.busy:  # another search holds it
        matches = item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])
    assert len(s["calls"]) == 1
    assert [m.item.pk for m in matches] == brute_items(s["regions"], s["vectors"], 6)


@pytest.mark.django_db(transaction=True)
def test_a_caller_with_autocommit_off_keeps_the_search_on_its_connection(split_searches, settings):
    s = split_searches
    settings.RECOMMENDER_PROBE_CONNECTIONS = 2
    transaction.set_autocommit(False)  # a transaction opened without atomic(): it may hold uncommitted rows
    try:
        matches = item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert [m.item.pk for m in matches] == brute_items(s["regions"], s["vectors"], 6)
    assert s["calls"] == []


def test_a_search_inside_the_callers_transaction_stays_on_its_connection(split_searches, settings):
    # Rows written in this (test) transaction are invisible to any other connection.
    s = split_searches
    settings.RECOMMENDER_PROBE_CONNECTIONS = 2
    matches = item_list_for_snapshot(snapshot_id=s["look"].pk, k=6, model_version=s["version"])
    assert [m.item.pk for m in matches] == brute_items(s["regions"], s["vectors"], 6)
    assert s["calls"] == []


def test_an_uploads_padding_rows_probe_once_and_change_nothing(catalog_rows, rng):
    from recommender.selectors.similarity import _query

    version = catalog_rows.version(dim=8, max_regions=4)
    items = catalog_rows.items(30)
    vectors = {item.pk: rng.normal(size=8).tolist() for item in items}
    catalog_rows.item_vectors(version, [(item, vectors[item.pk]) for item in items])
    whole, garment = rng.normal(size=(2, 8)).tolist()
    padded = [whole, garment, whole, whole]  # the garment scheme repeats row 0 past the garments found

    matches = item_list_for_snapshot(vectors=padded, model_version=version)

    assert [m.item.pk for m in matches] == brute_items([whole, garment], vectors, 6)
    query = _query(
        kind="item",
        model_version=version,
        k=6,
        filters=Filters(),
        query_vectors=padded,
        query_from=None,
        exclude_ids=(),
    )
    assert query.vectors.shape == (2, 8)
