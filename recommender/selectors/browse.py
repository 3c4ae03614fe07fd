"""Browse grids and detail pages: the catalog as shoppers see it (published snapshots only)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from catalog.models import Item, PostItem, Snapshot
from recommender.selectors.filters import Filters, owners_matching


def snapshot_list(*, filters: Filters | None = None) -> QuerySet[Snapshot]:
    """Published snapshots matching the filters, newest first (category: one of its curated items)."""
    filters = filters or Filters()
    qs = owners_matching("snapshot", filters)
    if filters.active:
        qs = qs.distinct()  # a join to styles, brands or items may repeat a snapshot
    return qs.order_by("-created_at", "-id")


def item_list(*, filters: Filters | None = None) -> QuerySet[Item]:
    """Items matching the filters, newest first, with brand and category joined."""
    filters = filters or Filters()
    qs = owners_matching("item", filters).select_related("brand", "category")
    if filters.style_ids:
        qs = qs.distinct()  # the join to styles may repeat an item
    return qs.order_by("-created_at", "-id")


def snapshot_get(*, snapshot_id: int, details: bool = True) -> Snapshot:
    """A published snapshot (with metadata and curated items prefetched unless ``details=False``); 404 otherwise."""
    qs = Snapshot.objects.published()
    if not details:
        return get_object_or_404(qs.only("id", "title"), pk=snapshot_id)
    qs = qs.prefetch_related(
        "styles",
        "tags",
        "brands",
        Prefetch("post_items", queryset=PostItem.objects.select_related("item__brand", "item__category")),
    )
    return get_object_or_404(qs, pk=snapshot_id)


def item_get(*, item_id: int, details: bool = True) -> Item:
    """An item with brand, category and styles (unless ``details=False``); 404 otherwise."""
    if not details:
        return get_object_or_404(Item.objects.only("id", "name"), pk=item_id)
    qs = Item.objects.select_related("brand", "category__parent").prefetch_related("styles")
    return get_object_or_404(qs, pk=item_id)
