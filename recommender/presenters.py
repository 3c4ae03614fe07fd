"""Small view-model helpers shared by the pages and the API (URLs of pages and pictures)."""

from __future__ import annotations

from django.urls import reverse

from catalog.models import ImageRecord, Item, Snapshot


def thumbnail_url(record: ImageRecord) -> str:
    """The thumbnail's URL, or the full picture's when no thumbnail was made."""
    field = record.thumbnail if record.thumbnail else record.image
    return field.url if field else ""


def image_url(record: ImageRecord) -> str:
    return record.image.url if record.image else ""


def page_url(record: Item | Snapshot) -> str:
    if isinstance(record, Item):
        return reverse("catalog:item_detail", args=[record.pk])
    return reverse("catalog:snapshot_detail", args=[record.pk])
