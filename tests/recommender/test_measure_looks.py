"""measure_looks on real PostgreSQL: figures of one pick per garment and of the top k, checked by hand."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from catalog.models import PostItem
from recommender.measure_looks import measure_looks
from recommender.selectors import item_list_for_snapshot
from recommender.selectors.similarity.pieces import look_picks
from tests.recommender.conftest import three_garment_look

pytestmark = pytest.mark.django_db


def test_the_figures_of_a_look_whose_curated_items_are_its_picks(catalog_rows, rng):
    look = three_garment_look(catalog_rows, rng)
    snapshot = look["snapshot"]
    _, picks = look_picks(snapshot_id=snapshot.pk)
    curated = [p.match.item for p in picks]
    PostItem.objects.bulk_create([PostItem(snapshot=snapshot, item=item, position=n) for n, item in enumerate(curated)])
    bare = catalog_rows.snapshots(1)[0]  # curated items but no garments: skipped
    catalog_rows.snapshot_vectors(look["version"], bare, look["regions"][:1])
    PostItem.objects.create(snapshot=bare, item=curated[0])

    report = measure_looks(k=12)  # 12 items of each kind: a piece's top 12 holds its kind's curated item

    f = report.figures
    assert (report.posts, report.skipped) == (1, 1)
    assert f["picks_per_look"] == 3 and f["picks_distinct_kinds"] == 3
    assert f["picks_found"] == f["picks_precision"] == f["picks_kinds"] == f["group_agreement"] == 100.0
    top = {m.item.pk for m in item_list_for_snapshot(snapshot_id=snapshot.pk, k=12, expansion_n=0)}
    found = len(top & {i.pk for i in curated})
    assert f["top_found"] == pytest.approx(100 * found / 3) and f["top_precision"] == pytest.approx(100 * found / 12)
    assert f["pieces"] == 3 and f["piece_hit"] == 100.0
    assert f["piece_precision"] == 100.0  # each kind is one category here

    out = io.StringIO()
    call_command("measure_looks", "--k", "6", stdout=out)
    text = out.getvalue()
    assert "posts measured: 1 (skipped 1" in text and "| curated items found (recall, %) | 100.0 |" in text
