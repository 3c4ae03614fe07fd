"""Catalog reads for the admin, importers and other apps: plain functions returning QuerySets or values."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import Count, Prefetch, QuerySet

from catalog import taxonomy
from catalog.models import Category, EmbeddingStatus, Item, PostItem, Snapshot


def _descendants(children: dict[int | None, list[int]], root_ids: Iterable[int]) -> tuple[int, ...]:
    """The given categories and every category below them, sorted: the one walk of the category tree."""
    seen: set[int] = set()
    stack = list(root_ids)
    while stack:
        cid = stack.pop()
        if cid not in seen:
            seen.add(cid)
            stack.extend(children.get(cid, []))
    return tuple(sorted(seen))


def _category_tree() -> tuple[dict[int | None, list[int]], dict[str, int]]:
    """(parent id -> child ids, slug -> id) of the whole tree (it is small: one query)."""
    children: dict[int | None, list[int]] = {}
    by_slug: dict[str, int] = {}
    # Without the ORM: a look reads the tree on every request, and compiling the queryset cost twice the query.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, parent_id, slug FROM {Category._meta.db_table}")
        tree = cursor.fetchall()
    for cid, parent_id, slug in tree:
        children.setdefault(parent_id, []).append(cid)
        by_slug[slug] = cid
    return children, by_slug


def category_ids_with_descendants(root_ids: Iterable[int]) -> tuple[int, ...]:
    """The given categories and every category below them, sorted (one query)."""
    return _descendants(_category_tree()[0], root_ids)


def item_list(*, categories: Iterable[Category] | None = None, with_subcategories: bool = True) -> QuerySet[Item]:
    """Items with brand and category joined, optionally limited to categories (and their subtrees)."""
    qs = Item.objects.select_related("brand", "category", "category__parent")
    if categories is not None:
        ids = [category.pk for category in categories]
        qs = qs.in_categories(category_ids_with_descendants(ids) if with_subcategories else ids)
    return qs


def snapshot_get_post(*, pk: int) -> Snapshot:
    """A snapshot with its curated items (in curated order) prefetched, for post pages."""
    post_items = Prefetch("post_items", queryset=PostItem.objects.select_related("item__brand", "item__category"))
    return Snapshot.objects.prefetch_related("styles", "tags", "brands", post_items).get(pk=pk)


def source_keys_existing(*, model: type[Item] | type[Snapshot], prefix: str) -> set[str]:
    """The importer identities already stored under ``prefix`` (one query; importers skip these rows)."""
    return set(model.objects.filter(source_key__startswith=prefix).values_list("source_key", flat=True))


def embedding_status_counts() -> dict[str, dict[str, int]]:
    """``{"items": {"pending": n, "ready": n, "failed": n}, "snapshots": {...}}``."""
    out = {}
    for label, model in (("items", Item), ("snapshots", Snapshot)):
        counts = dict(model.objects.values_list("embedding_status").annotate(n=Count("pk")).order_by())
        out[label] = {status: counts.get(status, 0) for status in EmbeddingStatus.values}
    return out


def ccp_post_snapshots(*, split: str) -> QuerySet[Snapshot]:
    """Snapshots imported from a CCP-Posts split (``train`` 0001-0600, ``val`` 0601-0800), by photo id.

    Keys are zero-padded (``ccp:post:0001``), so the split is a key range.
    """
    ranges = {"train": (1, 600), "val": (601, 800), "test": (801, 1004)}
    if split not in ranges:
        raise ValueError(f"unknown CCP split {split!r}; choose one of {', '.join(ranges)}")
    lo, hi = ranges[split]
    return Snapshot.objects.filter(source_key__gte=f"ccp:post:{lo:04d}", source_key__lte=f"ccp:post:{hi:04d}")


def category_ids_for_group(group: str) -> tuple[int, ...]:
    """The categories of a garment group (``catalog.taxonomy.GROUP_CATEGORIES``) with their subtrees, sorted;
    () for an unknown group or when none of its categories exists yet (one query)."""
    return category_ids_by_group().get(group, ())


def category_ids_by_group() -> dict[str, tuple[int, ...]]:
    """:func:`category_ids_for_group` of every garment group at once (one query)."""
    children, by_slug = _category_tree()
    return {
        group: _descendants(children, [by_slug[slug] for slug in slugs if slug in by_slug])
        for group, slugs in taxonomy.GROUP_CATEGORIES.items()
    }
