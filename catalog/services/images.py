"""Storing validated pictures on catalog rows: the file, its thumbnail, size, hash and embedding reset."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import EmbeddingStatus, ImageRecord
from catalog.validators import CleanImage


class DuplicateImageError(ValidationError):
    """The same picture (same pixels) is already in the catalog as ``existing``."""

    def __init__(self, clean: CleanImage, existing: ImageRecord):
        kind = existing._meta.verbose_name
        super().__init__(
            f"{clean.name}: the same image is already in the catalog as {kind} #{existing.pk} “{existing}”.",
            code="duplicate",
        )
        self.existing = existing


def find_duplicate(*, model: type[ImageRecord], content_hash: str, exclude_pk: int | None = None) -> ImageRecord | None:
    """The row of ``model`` that already stores a picture with this content hash, if any."""
    rows = model._default_manager.filter(content_hash=content_hash)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return rows.first()


def ensure_not_duplicate(*, model: type[ImageRecord], clean: CleanImage, exclude_pk: int | None = None) -> None:
    """Raise :class:`DuplicateImageError` when the picture is already stored on another row of ``model``."""
    existing = find_duplicate(model=model, content_hash=clean.content_hash, exclude_pk=exclude_pk)
    if existing is not None:
        raise DuplicateImageError(clean, existing)


def thumbnail_bytes(clean: CleanImage, *, width: int | None = None) -> bytes:
    """A JPEG ``width`` pixels wide (default ``CATALOG_THUMBNAIL_WIDTH``; never enlarged)."""
    width = width or settings.CATALOG_THUMBNAIL_WIDTH
    with Image.open(io.BytesIO(clean.content)) as img:
        height = max(1, round(img.height * width / img.width))
        if img.format == "JPEG":
            img.draft("RGB", (width, height))  # let libjpeg decode at a reduced scale: much faster
        img = img.convert("RGB")
        if img.width > width:
            img = img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=82, optimize=True)
        return out.getvalue()


def image_attach(*, record: ImageRecord, clean: CleanImage) -> list[str]:
    """Write the picture and its thumbnail to storage and set the row's image facts (the row is not saved).

    The embedding state is reset to pending: a new picture needs a new descriptor.
    Returns the storage names written, so a caller can delete them if its transaction fails.
    """
    stem = clean.content_hash[:24]
    record.image.save(f"{stem}{clean.extension}", ContentFile(clean.content), save=False)
    record.thumbnail.save(f"{stem}.jpg", ContentFile(thumbnail_bytes(clean)), save=False)
    record.width, record.height = clean.width, clean.height
    record.content_hash = clean.content_hash
    record.embedding_status = EmbeddingStatus.PENDING
    record.embedding_error = ""
    record.embedded_at = None
    return [record.image.name, record.thumbnail.name]


def files_delete(names: list[str]) -> None:
    """Remove stored files (best effort): used when the transaction that referenced them rolled back."""
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            pass
