"""Shop the look on real PostgreSQL + pgvector: one pick per garment, items for one piece, the garment an
item matched, each against a NumPy brute force over the garment's own categories."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.models import SnapshotEmbedding, SnapshotGarment
from catalog.services.taxonomy import category_get_or_create
from recommender.selectors import Filters, category_ids_with_descendants, snapshot_list_for_item
from recommender.selectors.similarity.pieces import (
    GarmentNotFound,
    garment_list,
    item_list_for_garment,
    look_picks,
    matched_garments,
)
from tests import factories as f
from tests.recommender.conftest import garment_records, store_garments, three_garment_look

pytestmark = pytest.mark.django_db


@pytest.fixture
def look(catalog_rows, rng):
    return three_garment_look(catalog_rows, rng)


def _brute(query, candidates, vectors, k=1, exclude=()):
    """Reference: the k candidates nearest ``query`` (one vector, or several: an item scores by its best)."""
    q = np.atleast_2d(np.asarray(query))
    scored = sorted((-(q @ np.asarray(vectors[i.pk])).max(), i.pk) for i in candidates if i.pk not in exclude)
    return [pk for _, pk in scored[:k]]


def _pick_query(look, region):
    """A pick ranks its kind's items by their best cosine over the garment's row and the whole photo's."""
    return [look["regions"][region], look["regions"][0]]


def test_one_pick_per_garment_in_the_looks_order_each_the_nearest_item_of_its_kind(look):
    garments, picks = look_picks(snapshot_id=look["snapshot"].pk)
    assert [g.group for g in garments] == ["tops", "trousers", "shoes"]  # top of the photo first
    assert [g.number for g in garments] == [1, 2, 3] and garments[0].name == "Top"
    assert [p.garment.group for p in picks] == ["tops", "trousers", "shoes"]
    for pick in picks:
        query = _pick_query(look, pick.garment.region)
        assert [pick.match.item.pk] == _brute(query, look["items"][pick.garment.group], look["vectors"])
        score = max(float(np.dot(q, look["vectors"][pick.match.item.pk])) for q in query)
        assert pick.match.score == pytest.approx(score, abs=1e-5)
    # an upload's vectors and garment records give the same picks
    _, uploaded = look_picks(vectors=look["regions"], garments=garment_records())
    assert [p.match.item.pk for p in uploaded] == [p.match.item.pk for p in picks]


def test_two_garments_of_one_kind_never_share_an_item_and_the_larger_chooses_first(look):
    version, snapshot = look["version"], look["snapshot"]
    best_top = _brute(_pick_query(look, 1), look["items"]["tops"], look["vectors"])[0]
    SnapshotGarment.objects.filter(snapshot=snapshot).delete()
    # region 2 becomes a second, smaller top with the very same vector as region 1
    SnapshotEmbedding.objects.filter(snapshot=snapshot, model_version=version, region=2).update(
        vector=look["regions"][1]
    )
    store_garments(version, snapshot, {1: ("tops", (0.1, 0.1, 0.9, 0.5)), 2: ("tops", (0.4, 0.6, 0.5, 0.7))})
    _, picks = look_picks(snapshot_id=snapshot.pk)
    by_box = {p.garment.box: p.match.item.pk for p in picks}
    assert by_box[(0.1, 0.1, 0.9, 0.5)] == best_top
    second = _brute(_pick_query(look, 1), look["items"]["tops"], look["vectors"], exclude={best_top})[0]
    assert by_box[(0.4, 0.6, 0.5, 0.7)] == second


def test_the_shoppers_filters_run_inside_each_garments_search(look):
    snapshot = look["snapshot"]
    pants = category_get_or_create(path="pants")
    only_trousers = Filters(category_ids=category_ids_with_descendants([pants.pk]))
    _, picks = look_picks(snapshot_id=snapshot.pk, filters=only_trousers)
    assert [p.garment.group for p in picks] == ["trousers"]  # the other garments' kinds are filtered out
    acme = look["acme"]
    _, picks = look_picks(snapshot_id=snapshot.pk, filters=Filters(brand_ids=(acme.pk,)))
    assert len(picks) == 3 and all(p.match.item.brand_id == acme.pk for p in picks)
    for pick in picks:
        candidates = [i for i in look["items"][pick.garment.group] if i.brand_id == acme.pk]
        assert [pick.match.item.pk] == _brute(_pick_query(look, pick.garment.region), candidates, look["vectors"])


def test_more_like_this_piece_and_bad_garments(look):
    snapshot = look["snapshot"]
    garment, matches = item_list_for_garment(snapshot_id=snapshot.pk, garment_number=2, k=5)
    assert garment.group == "trousers"
    assert [m.item.pk for m in matches] == _brute(
        look["regions"][garment.region], look["items"]["trousers"], look["vectors"], k=5
    )
    for number in (0, 4, 99):
        with pytest.raises(GarmentNotFound):
            item_list_for_garment(snapshot_id=snapshot.pk, garment_number=number)
    with pytest.raises(GarmentNotFound):  # a garment number of another look, one without garments
        item_list_for_garment(snapshot_id=f.make_snapshot().pk, garment_number=1)
    # an upload's piece: its vector and group; with no group (a box the shopper drew) any category
    _, uploaded = item_list_for_garment(vector=look["regions"][3], group="shoes", k=3)
    assert [m.item.pk for m in uploaded] == _brute(look["regions"][3], look["items"]["shoes"], look["vectors"], k=3)
    everything = [i for group in look["items"].values() for i in group]
    _, drawn = item_list_for_garment(vector=look["regions"][3], group=None, k=3)
    assert [m.item.pk for m in drawn] == _brute(look["regions"][3], everything, look["vectors"], k=3)


def test_a_look_without_garments_has_no_picks_and_an_item_finds_the_garment_it_matched(catalog_rows, look):
    version = look["version"]
    bare = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(version, bare, look["regions"][:1])
    assert look_picks(snapshot_id=bare.pk) == ([], [])
    assert garment_list(snapshot_id=bare.pk) == []
    shoe = look["items"]["shoes"][0]
    matches = snapshot_list_for_item(item_id=shoe.pk, k=5)
    found = matched_garments(item_id=shoe.pk, matches=matches)
    assert bare.pk not in found
    q = np.asarray(look["vectors"][shoe.pk])
    nearest_region = max((1, 2, 3), key=lambda r: float(q @ np.asarray(look["regions"][r])))
    assert found[look["snapshot"].pk].region == nearest_region
    uploaded = matched_garments(vector=look["vectors"][shoe.pk], matches=matches)
    assert {k: g.region for k, g in uploaded.items()} == {k: g.region for k, g in found.items()}
    with pytest.raises(ValueError):
        matched_garments(matches=matches)


def test_a_looks_picks_are_one_search_statement_whatever_its_garments(look, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.RECOMMENDER_PICKS_WHOLE_PHOTO_TOP = 10  # fewer than the catalog's items: the walk is not short

    look_picks(snapshot_id=look["snapshot"].pk)  # warm
    with CaptureQueriesContext(connection) as queries:
        garments, picks = look_picks(snapshot_id=look["snapshot"].pk)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # the active version, the garments, the category tree, the search's settings, the one search of every
    # garment's probes (which reads the items' rows too)
    assert len(garments) == len(picks) == 3
    assert len(statements) == 5, "\n".join(statements)
    assert "JOIN catalog_item t ON t.id = r.target_id" in statements[-1]
    assert sum("CROSS JOIN LATERAL" in sql for sql in statements) == 1


def test_a_smaller_garment_of_a_kind_with_one_item_gets_no_pick_after_an_exact_search(catalog_rows, look):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    version, snapshot = look["version"], look["snapshot"]
    SnapshotGarment.objects.filter(snapshot=snapshot).delete()
    boot = catalog_rows.items(1, category=category_get_or_create(path="boots"))[0]
    catalog_rows.item_vectors(version, [(boot, look["regions"][1])])
    store_garments(version, snapshot, {1: ("boots", (0.1, 0.6, 0.5, 0.99)), 2: ("boots", (0.6, 0.9, 0.7, 0.99))})
    with CaptureQueriesContext(connection) as queries:
        garments, picks = look_picks(snapshot_id=snapshot.pk)
    assert len(garments) == 2 and [(p.garment.region, p.match.item.pk) for p in picks] == [(1, boot.pk)]
    # the smaller garment's walk asked for 2 items of a kind that has 1: it ended short and was searched
    # again exactly (as a walk cut short by hnsw.max_scan_tuples would be)
    assert sum(") + 0 LIMIT 2" in q["sql"] for q in queries.captured_queries) == 1


def test_the_whole_photo_counts_for_the_items_among_its_own_top_n(look, settings):
    settings.RECOMMENDER_PICKS_WHOLE_PHOTO_TOP = 3
    everything = [i for group in look["items"].values() for i in group]
    whole = look["regions"][0]
    top_whole = set(_brute(whole, everything, look["vectors"], k=3))
    _, picks = look_picks(snapshot_id=look["snapshot"].pk)
    taken = set()
    for pick in sorted(
        picks, key=lambda p: -(p.garment.box[2] - p.garment.box[0]) * (p.garment.box[3] - p.garment.box[1])
    ):
        g = np.asarray(look["regions"][pick.garment.region])

        def score(item, g=g):
            near = float(g @ np.asarray(look["vectors"][item.pk]))
            if item.pk in top_whole:
                near = max(near, float(np.asarray(whole) @ np.asarray(look["vectors"][item.pk])))
            return near

        kind = [i for i in look["items"][pick.garment.group] if i.pk not in taken]
        best = max(kind, key=lambda i: (score(i), -i.pk))
        assert pick.match.item.pk == best.pk
        assert pick.match.score == pytest.approx(score(best), abs=1e-5)
        taken.add(best.pk)


def test_every_short_walk_of_a_look_is_searched_again_in_one_exact_statement(catalog_rows, look, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.RECOMMENDER_PICKS_WHOLE_PHOTO_TOP = 10  # fewer than the catalog's items: that walk is not short
    version, snapshot = look["version"], look["snapshot"]
    SnapshotGarment.objects.filter(snapshot=snapshot).delete()
    boot = catalog_rows.items(1, category=category_get_or_create(path="boots"))[0]
    hat = catalog_rows.items(1, category=category_get_or_create(path="hats"))[0]
    catalog_rows.item_vectors(version, [(boot, look["regions"][2]), (hat, look["regions"][3])])
    look["vectors"].update({boot.pk: look["regions"][2], hat.pk: look["regions"][3]})
    # the top chooses first (largest), then the boots (limit 2) and the hat (limit 3): kinds of one item each
    store_garments(
        version,
        snapshot,
        {1: ("tops", (0.1, 0.1, 0.9, 0.6)), 2: ("boots", (0.1, 0.7, 0.6, 0.99)), 3: ("hat", (0.4, 0.0, 0.6, 0.1))},
    )
    with CaptureQueriesContext(connection) as queries:
        _, picks = look_picks(snapshot_id=snapshot.pk)
    exact = [q["sql"] for q in queries.captured_queries if ") + 0 LIMIT" in q["sql"]]
    assert len(exact) == 1, "\n".join(exact)
    # both short walks in it (a branch each, their kinds literal), and not the whole photo's
    assert exact[0].count("CROSS JOIN LATERAL") == 2 and "FROM w q" not in exact[0]
    walks = [q["sql"] for q in queries.captured_queries if "CROSS JOIN LATERAL" in q["sql"] and q["sql"] not in exact]
    assert len(walks) == 2  # every walk, then the short ones five times wider, before the exact scan
    assert walks[1].count("CROSS JOIN LATERAL") == 2 and "FROM w q" not in walks[1]
    by_group = {p.garment.group: p.match.item.pk for p in picks}
    assert by_group["boots"] == boot.pk and by_group["hat"] == hat.pk
    assert [by_group["tops"]] == _brute(_pick_query(look, 1), look["items"]["tops"], look["vectors"])
    # the exact reference: every search in that one exact statement, the same answer
    with CaptureQueriesContext(connection) as queries:
        _, reference = look_picks(snapshot_id=snapshot.pk, exact=True)
    assert [p.match.item.pk for p in reference] == [p.match.item.pk for p in picks]
    assert sum(") + 0 LIMIT" in q["sql"] for q in queries.captured_queries) == 1


def test_each_garment_group_gets_a_graph_of_its_own_that_a_looks_garments_walk(look, settings):
    from django.db import connection

    from catalog.models import Category
    from catalog.selectors import category_ids_by_group
    from recommender.indexes import garment_index_name, vector_index_drop, vector_index_ensure
    from recommender.selectors.similarity.execution import vector_cursor
    from recommender.selectors.similarity.look_statement import Probe, picks_sql

    def built() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relname LIKE %s", [f"catalog_itememb_%_mv{version.pk}_g%"]
            )
            return {row[0] for row in cursor.fetchall()}

    settings.RECOMMENDER_GARMENT_INDEX_MIN_ROWS = 12  # each of the look's three kinds holds 12 items
    version, snapshot = look["version"], look["snapshot"]
    vector_index_ensure(model_version=version)
    kinds = category_ids_by_group()
    groups = {1: "tops", 2: "trousers", 3: "shoes"}
    names = {group: garment_index_name(version, group, kinds[group]) for group in groups.values()}
    assert built() == set(names.values())  # and none for the groups without items

    probes = [Probe(n, region, 1, kinds[group]) for n, (region, group) in enumerate(groups.items())]
    sql, params = picks_sql(
        version=version, probes=probes, whole_limit=0, filters=Filters(), exclude_ids=(), snapshot_id=snapshot.pk
    )
    with vector_cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # the catalog-scale plan on a small table
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for name in names.values():
        assert f"Index Scan using {name}" in plan, plan
    _, picks = look_picks(snapshot_id=snapshot.pk)
    for pick in picks:
        query = _pick_query(look, pick.garment.region)
        assert [pick.match.item.pk] == _brute(query, look["items"][pick.garment.group], look["vectors"])

    # a category added below one of a group's categories: that group's graph is built again, the old one dropped
    f.make_category("Tunics", parent=Category.objects.get(slug="tops"))
    vector_index_ensure(model_version=version)
    tops = garment_index_name(version, "tops", category_ids_by_group()["tops"])
    assert tops != names["tops"] and built() == {tops, names["trousers"], names["shoes"]}
    vector_index_drop(model_version=version)
    assert built() == set()
