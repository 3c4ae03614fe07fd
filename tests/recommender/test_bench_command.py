"""The selector benchmark runs end to end on a small catalog and leaves nothing behind."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Category, Item, ItemEmbedding, Snapshot, SnapshotEmbedding, SnapshotGarment, Style
from recommender.indexes import vector_index_ensure
from recommender.models import ModelVersion

SMALL = dict(
    items=400,
    snapshots=80,
    regions=4,
    dim=16,
    clusters=20,
    queries=5,
    warmup=5,
    ef_search="40",
    ef_search_snapshots="60",
)


def _report(text: str) -> None:
    rows = [line for line in text.splitlines() if line.startswith(("snapshot -> items", "item -> snapshots"))]
    assert len(rows) == 4, text  # both directions, with and without the style filter
    for row in rows:
        *_, recall, plan, target = row.split()
        assert 0.0 <= float(recall) <= 1.0
        assert plan in ("hnsw", "exact") and target in ("met", "MISSED")
    assert text.count("warm-up of snapshot -> items") + text.count("warm-up of item -> snapshots") == 4, text


def _shop_report(text: str) -> None:
    rows = [line for line in text.splitlines() if line.startswith(("look_picks ", "more like this piece "))]
    assert len(rows) == 4, text  # both cases, with and without the style filter
    for row in rows:
        *_, recall, statements, sql_ms, target = row.split()
        assert 0.0 <= float(recall) <= 1.0
        assert float(statements) >= 3 and float(sql_ms) > 0 and target in ("met", "MISSED")
    assert "garment scheme (" in text and "garment searches by group" in text, text
    assert text.count("warm-up of look_picks") == 2 and text.count("warm-up of more like this piece") == 2, text


def _nothing_left() -> None:
    assert not ModelVersion.objects.filter(backbone="bench").exists()
    assert not SnapshotGarment.objects.exists()
    assert not Item.objects.filter(name__startswith="bench item").exists()
    assert not Snapshot.objects.filter(title__startswith="bench look").exists()
    assert not Style.objects.filter(slug__startswith="bench-").exists()


def test_bench_recommender_in_one_transaction_rolls_back(db):
    out = StringIO()
    call_command("bench_recommender", **SMALL, in_transaction=True, stdout=out, stderr=StringIO())
    _report(out.getvalue())
    assert "scratch data rolled back" in out.getvalue()
    _nothing_left()


@pytest.mark.django_db(transaction=True)
def test_bench_recommender_commits_its_scratch_data_and_deletes_it_and_any_left_by_a_killed_run():
    from django.db import connection

    # What a killed run leaves: a scratch version with its indexes, catalog rows and vectors.
    leftover = ModelVersion.objects.create(name="bench-killed", backbone="bench", dim=4, max_regions=1)
    size = dict(width=300, height=400)  # known, so no image file is opened
    item = Item.objects.create(
        name="bench item 0", image="bench/x/i0.jpg", content_hash=f"bench-{leftover.pk}-i0", **size
    )
    look = Snapshot.objects.create(
        title="bench look 0", image="bench/x/s0.jpg", content_hash=f"bench-{leftover.pk}-s0", **size
    )
    ItemEmbedding.objects.create(item=item, model_version=leftover, vector=[1, 0, 0, 0])
    SnapshotEmbedding.objects.create(snapshot=look, model_version=leftover, region=0, vector=[0, 1, 0, 0])
    vector_index_ensure(model_version=leftover)
    kept = Item.objects.create(name="a real item", image="images/x.jpg", content_hash="real-1", **size)

    out = StringIO()
    call_command("bench_recommender", **SMALL, stdout=out, stderr=StringIO())

    _report(out.getvalue())
    assert "filling (committed; deleted at the end)" in out.getvalue()
    assert "deleting the scratch data" in out.getvalue()
    _nothing_left()
    assert Item.objects.filter(pk=kept.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relname LIKE %s", [f"%_mv{leftover.pk}%"])
        assert cursor.fetchone()[0] == 0


def test_bench_garment_scheme_in_one_transaction_measures_shop_the_look_and_rolls_back(db):
    out = StringIO()
    call_command("bench_recommender", **SMALL, scheme="garments", in_transaction=True, stdout=out, stderr=StringIO())
    text = out.getvalue()
    _shop_report(text)
    assert not any(line.startswith("snapshot -> items") for line in text.splitlines())  # no window scheme
    assert "scratch data rolled back" in text
    _nothing_left()


@pytest.mark.django_db(transaction=True)
def test_bench_both_schemes_commit_report_side_by_side_and_delete_every_scratch_row_but_keep_the_categories():
    out = StringIO()
    call_command("bench_recommender", **SMALL, scheme="both", stdout=out, stderr=StringIO())
    text = out.getvalue()
    _report(text)
    _shop_report(text)
    side = text[text.index("side by side") :].splitlines()
    assert any(line.startswith("window: snapshot -> items") for line in side), text
    assert any(line.startswith("garments: look_picks") for line in side), text
    assert "deleting the scratch data" in text
    _nothing_left()
    assert not ItemEmbedding.objects.exists() and not SnapshotEmbedding.objects.exists()
    assert Category.objects.filter(slug="shoes").exists()  # the canonical tree is catalog data: it stays


def test_help_is_printed(capsys):
    # argparse %-formats every help string: a bare "%" in one made --help crash.
    with pytest.raises(SystemExit) as exit_:
        call_command("bench_recommender", "--help")
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--warmup" in out and "%" in out
