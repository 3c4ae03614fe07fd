"""Stored files no catalog row references (left by deleted rows or by a batch rolled back mid-import)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from catalog.models import Item, Snapshot

MANAGED_FOLDERS = ("images", "thumbs")


def media_orphans() -> list[str]:
    """Storage names under ``images/`` and ``thumbs/`` that no item or snapshot references."""
    referenced: set[str] = set()
    for model in (Item, Snapshot):
        for image, thumb in model.objects.values_list("image", "thumbnail").iterator(chunk_size=5000):
            referenced.update(name for name in (image, thumb) if name)
    root = Path(settings.MEDIA_ROOT)
    found = []
    for folder in MANAGED_FOLDERS:
        base = root / folder
        if base.is_dir():
            found += [p.relative_to(root).as_posix() for p in base.rglob("*") if p.is_file()]
    return sorted(name for name in found if name not in referenced)


def media_orphans_delete(names: list[str]) -> int:
    """Delete these orphan files; returns how many were removed."""
    root = Path(settings.MEDIA_ROOT)
    removed = 0
    for name in names:
        path = root / name
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
