"""Item embedding rows carry their item's category id, kept by PostgreSQL triggers (catalog migration 0008)."""

from __future__ import annotations

import pytest

from catalog.models import Item, ItemEmbedding
from recommender.models import ModelVersion
from tests import factories as f

pytestmark = pytest.mark.django_db


def _rows(item) -> list[int | None]:
    return list(ItemEmbedding.objects.filter(item=item).order_by("model_version").values_list("category_id", flat=True))


def test_item_rows_follow_the_items_category_whatever_writes_them():
    shoes, bags = f.make_category("Shoes"), f.make_category("Bags")
    item, other = f.make_item(category=shoes), f.make_item(category=bags)
    v1, v2 = (
        ModelVersion.objects.create(name=f"cat-{n}", backbone="test", dim=3, max_regions=2, status="ready")
        for n in (1, 2)
    )
    # The writer's value is ignored: the row gets the item's category.
    ItemEmbedding.objects.create(item=item, model_version=v1, vector=[1, 0, 0], category_id=bags.pk)
    ItemEmbedding.objects.bulk_create(
        [
            ItemEmbedding(item=item, model_version=v2, vector=[0, 1, 0]),
            ItemEmbedding(item=other, model_version=v1, vector=[0, 0, 1]),
        ]
    )
    assert _rows(item) == [shoes.pk, shoes.pk] and _rows(other) == [bags.pk]

    item.category = bags
    item.save()
    assert _rows(item) == [bags.pk, bags.pk]
    Item.objects.filter(pk=item.pk).update(category=shoes)  # a queryset update too
    assert _rows(item) == [shoes.pk, shoes.pk] and _rows(other) == [bags.pk]
    ItemEmbedding.objects.filter(item=item).update(category_id=None)  # a stray write is recomputed
    assert _rows(item) == [shoes.pk, shoes.pk]
    item.category = None
    item.save()
    assert _rows(item) == [None, None] and _rows(other) == [bags.pk]
