"""Posts: one snapshot plus the items experts linked to it (new items or existing ones)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction

from catalog.models import Brand, Category, Item, PostItem, Snapshot, Style
from catalog.services.embedding_queue import embeddings_enqueue
from catalog.services.items import item_create
from catalog.services.snapshots import snapshot_create, snapshot_update
from catalog.validators import CleanImage


@dataclass
class NewItem:
    """An item to create together with its post."""

    image: CleanImage
    name: str
    brand: Brand | None = None
    category: Category | None = None
    styles: Sequence[Style] = field(default_factory=tuple)
    price: Decimal | None = None
    product_url: str = ""
    source_key: str | None = None


def _resolve_items(entries: Iterable[Item | NewItem]) -> tuple[list[Item], list[int]]:
    """The items in order, creating the new ones; returns (items, ids of the created ones)."""
    items: list[Item] = []
    created: list[int] = []
    for entry in entries:
        if isinstance(entry, NewItem):
            entry = item_create(
                image=entry.image,
                name=entry.name,
                brand=entry.brand,
                category=entry.category,
                styles=entry.styles,
                price=entry.price,
                product_url=entry.product_url,
                source_key=entry.source_key,
                enqueue=False,
            )
            created.append(entry.pk)
        if entry not in items:
            items.append(entry)
    return items, created


@transaction.atomic
def post_items_set(*, snapshot: Snapshot, items: Sequence[Item]) -> list[PostItem]:
    """Make ``items`` (in this order) exactly the snapshot's curated items."""
    wanted = {item.pk: position for position, item in enumerate(items)}
    PostItem.objects.filter(snapshot=snapshot).exclude(item_id__in=wanted).delete()
    existing = {row.item_id: row for row in PostItem.objects.filter(snapshot=snapshot)}
    rows = []
    for item_pk, position in wanted.items():
        row = existing.get(item_pk)
        if row is None:
            row = PostItem(snapshot=snapshot, item_id=item_pk, position=position)
            row.full_clean(validate_unique=False)
            row.save()
        elif row.position != position:
            row.position = position
            row.save(update_fields=["position"])
        rows.append(row)
    return rows


@transaction.atomic
def post_create(
    *, image: CleanImage, title: str, items: Sequence[Item | NewItem] = (), enqueue: bool = True, **snapshot_fields
) -> Snapshot:
    """Create a snapshot and link its items (existing ``Item`` rows or ``NewItem`` specs), all or nothing.

    ``snapshot_fields`` go to :func:`catalog.services.snapshots.snapshot_create` (person fields,
    styles, tags, brands, source_url, is_published, source_key). Embeddings of the snapshot and
    the new items are queued after commit. Raises ``ValidationError`` naming the bad file.
    """
    snapshot = snapshot_create(image=image, title=title, enqueue=False, **snapshot_fields)
    linked, created = _resolve_items(items)
    post_items_set(snapshot=snapshot, items=linked)
    if enqueue:
        embeddings_enqueue(item_ids=created, snapshot_ids=[snapshot.pk])
    return snapshot


@transaction.atomic
def post_update(
    *,
    snapshot: Snapshot,
    image: CleanImage | None = None,
    items: Sequence[Item | NewItem] | None = None,
    enqueue: bool = True,
    **snapshot_fields,
) -> Snapshot:
    """Update a post; ``items`` (when given) replaces the curated items, creating the new ones."""
    snapshot = snapshot_update(snapshot=snapshot, image=image, enqueue=enqueue, **snapshot_fields)
    if items is not None:
        linked, created = _resolve_items(items)
        post_items_set(snapshot=snapshot, items=linked)
        if enqueue:
            embeddings_enqueue(item_ids=created)
    return snapshot
