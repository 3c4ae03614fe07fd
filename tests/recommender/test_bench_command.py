"""The selector benchmark runs end to end on a small catalog and leaves nothing behind."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from catalog.models import Item, Snapshot
from recommender.models import ModelVersion


def test_bench_recommender_reports_latency_and_recall_and_rolls_back(db):
    out = StringIO()
    call_command(
        "bench_recommender", items=400, snapshots=80, regions=4, dim=16, clusters=20, queries=5,
        ef_search="40", ef_search_snapshots="60", stdout=out, stderr=StringIO(),
    )
    text = out.getvalue()
    rows = [line for line in text.splitlines() if line.startswith(("snapshot -> items", "item -> snapshots"))]
    assert len(rows) == 4, text  # both directions, with and without the style filter
    for row in rows:
        *_, recall, plan, target = row.split()
        assert 0.0 <= float(recall) <= 1.0
        assert plan in ("hnsw", "exact") and target in ("met", "MISSED")
    assert "scratch data rolled back" in text
    assert not ModelVersion.objects.filter(backbone="bench").exists()
    assert not Item.objects.filter(name__startswith="bench item").exists()
    assert not Snapshot.objects.filter(title__startswith="bench look").exists()
