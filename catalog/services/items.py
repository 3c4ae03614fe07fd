"""Item writes: create and update, with the picture stored and its embedding queued after commit."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from catalog.models import Brand, Category, Item, Style
from catalog.services.embedding_queue import embeddings_enqueue
from catalog.services.images import ensure_not_duplicate, files_delete, image_attach
from catalog.validators import CleanImage

_UNSET = object()


@transaction.atomic
def item_create(
    *,
    image: CleanImage,
    name: str,
    brand: Brand | None = None,
    category: Category | None = None,
    styles: Iterable[Style] = (),
    price: Decimal | None = None,
    product_url: str = "",
    source_key: str | None = None,
    enqueue: bool = True,
) -> Item:
    """Create an item from a validated picture; raises ``ValidationError`` (also for a duplicate picture).

    With ``enqueue`` the item's embedding is queued once the transaction commits.
    """
    ensure_not_duplicate(model=Item, clean=image)
    item = Item(
        name=name, brand=brand, category=category, price=price, product_url=product_url, source_key=source_key or None
    )
    written = image_attach(record=item, clean=image)
    try:
        item.full_clean()
        item.save()
        item.styles.set(list(styles))
    except Exception:
        files_delete(written)
        raise
    if enqueue:
        embeddings_enqueue(item_ids=[item.pk])
    return item


@transaction.atomic
def item_update(
    *,
    item: Item,
    image: CleanImage | None = None,
    styles: Iterable[Style] | None = None,
    enqueue: bool = True,
    **fields,
) -> Item:
    """Change an item's fields (``name``, ``brand``, ``category``, ``price``, ``product_url``), styles or picture.

    A new picture resets the embedding to pending and queues it again.
    """
    allowed = {"name", "brand", "category", "price", "product_url"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"item_update() got unexpected fields: {sorted(unknown)}")
    for field, value in fields.items():
        setattr(item, field, value)
    written: list[str] = []
    if image is not None and image.content_hash != item.content_hash:
        ensure_not_duplicate(model=Item, clean=image, exclude_pk=item.pk)
        written = image_attach(record=item, clean=image)
    try:
        item.full_clean()
        item.save()
        if styles is not None:
            item.styles.set(list(styles))
    except Exception:
        files_delete(written)
        raise
    if written and enqueue:
        embeddings_enqueue(item_ids=[item.pk])
    return item
