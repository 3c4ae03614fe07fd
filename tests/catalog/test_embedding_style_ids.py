"""Embedding rows carry their owner's style ids, kept by PostgreSQL triggers (catalog migration 0004)."""

from __future__ import annotations

import pytest

from catalog.models import Item, ItemEmbedding, Snapshot, SnapshotEmbedding
from recommender.models import ModelVersion
from tests import factories as f

pytestmark = pytest.mark.django_db


def _version(name: str) -> ModelVersion:
    return ModelVersion.objects.create(name=name, backbone="test", dim=3, max_regions=2, status="ready")


def _item_styles(item) -> list[list[int]]:
    return [sorted(r) for r in ItemEmbedding.objects.filter(item=item).values_list("style_ids", flat=True)]


def test_item_rows_follow_style_changes_made_any_way():
    boho, street, minimal = f.make_style("Boho"), f.make_style("Street"), f.make_style("Minimal")
    item = f.make_item(styles=[boho])
    v1, v2 = _version("st-1"), _version("st-2")
    # The writer's value is ignored: the row gets the item's styles.
    ItemEmbedding.objects.create(item=item, model_version=v1, vector=[1, 0, 0], style_ids=[999])
    ItemEmbedding.objects.bulk_create([ItemEmbedding(item=item, model_version=v2, vector=[0, 1, 0])])
    assert _item_styles(item) == [[boho.pk], [boho.pk]]

    item.styles.add(street)
    assert _item_styles(item) == [sorted([boho.pk, street.pk])] * 2
    item.styles.remove(boho)
    assert _item_styles(item) == [[street.pk]] * 2
    Item.styles.through.objects.bulk_create([Item.styles.through(item_id=item.pk, style_id=minimal.pk)])
    assert _item_styles(item) == [sorted([street.pk, minimal.pk])] * 2
    ItemEmbedding.objects.filter(item=item).update(style_ids=[])  # a stray write is recomputed too
    assert _item_styles(item) == [sorted([street.pk, minimal.pk])] * 2
    item.styles.clear()
    assert _item_styles(item) == [[], []]


def test_every_region_row_of_a_snapshot_follows_its_styles_and_a_deleted_style_leaves_them():
    boho, street = f.make_style("Boho"), f.make_style("Street")
    look, other = f.make_snapshot(styles=[boho]), f.make_snapshot(styles=[street])
    version = _version("st-3")
    SnapshotEmbedding.objects.bulk_create(
        [
            SnapshotEmbedding(snapshot=s, model_version=version, region=r, vector=[1, r, 0])
            for s in (look, other)
            for r in range(2)
        ]
    )

    look.styles.set([boho, street])
    assert [sorted(r) for r in SnapshotEmbedding.objects.filter(snapshot=look).values_list("style_ids", flat=True)] == [
        sorted([boho.pk, street.pk])
    ] * 2
    street.delete()
    assert set(map(tuple, SnapshotEmbedding.objects.filter(snapshot=look).values_list("style_ids", flat=True))) == {
        (boho.pk,)
    }
    assert set(map(tuple, SnapshotEmbedding.objects.filter(snapshot=other).values_list("style_ids", flat=True))) == {()}
    Snapshot.objects.filter(pk=look.pk).delete()
    assert not SnapshotEmbedding.objects.filter(snapshot_id=look.pk).exists()
