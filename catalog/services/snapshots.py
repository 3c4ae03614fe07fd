"""Snapshot writes: create and update, with the picture stored and its embedding queued after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from catalog.models import Brand, Snapshot, Style, Tag
from catalog.services.embedding_queue import embeddings_enqueue
from catalog.services.images import ensure_not_duplicate, files_delete, image_attach
from catalog.validators import CleanImage

SNAPSHOT_FIELDS = frozenset({"title", "person_name", "person_age", "person_occupation", "source_url", "is_published"})


@transaction.atomic
def snapshot_create(
    *,
    image: CleanImage,
    title: str,
    person_name: str = "",
    person_age: int | None = None,
    person_occupation: str = "",
    styles: Iterable[Style] = (),
    tags: Iterable[Tag] = (),
    brands: Iterable[Brand] = (),
    source_url: str = "",
    is_published: bool = True,
    source_key: str | None = None,
    enqueue: bool = True,
) -> Snapshot:
    """Create a snapshot from a validated picture; raises ``ValidationError`` (also for a duplicate picture)."""
    ensure_not_duplicate(model=Snapshot, clean=image)
    snapshot = Snapshot(
        title=title,
        person_name=person_name,
        person_age=person_age,
        person_occupation=person_occupation,
        source_url=source_url,
        is_published=is_published,
        source_key=source_key or None,
    )
    written = image_attach(record=snapshot, clean=image)
    try:
        snapshot.full_clean()
        snapshot.save()
        snapshot.styles.set(list(styles))
        snapshot.tags.set(list(tags))
        snapshot.brands.set(list(brands))
    except Exception:
        files_delete(written)
        raise
    if enqueue:
        embeddings_enqueue(snapshot_ids=[snapshot.pk])
    return snapshot


@transaction.atomic
def snapshot_update(
    *,
    snapshot: Snapshot,
    image: CleanImage | None = None,
    styles: Iterable[Style] | None = None,
    tags: Iterable[Tag] | None = None,
    brands: Iterable[Brand] | None = None,
    enqueue: bool = True,
    **fields,
) -> Snapshot:
    """Change a snapshot's fields (see ``SNAPSHOT_FIELDS``), relations or picture.

    A new picture resets the embedding to pending and queues it again.
    """
    unknown = set(fields) - SNAPSHOT_FIELDS
    if unknown:
        raise TypeError(f"snapshot_update() got unexpected fields: {sorted(unknown)}")
    for field, value in fields.items():
        setattr(snapshot, field, value)
    written: list[str] = []
    if image is not None and image.content_hash != snapshot.content_hash:
        ensure_not_duplicate(model=Snapshot, clean=image, exclude_pk=snapshot.pk)
        written = image_attach(record=snapshot, clean=image)
    try:
        snapshot.full_clean()
        snapshot.save()
        for relation, values in (("styles", styles), ("tags", tags), ("brands", brands)):
            if values is not None:
                getattr(snapshot, relation).set(list(values))
    except Exception:
        files_delete(written)
        raise
    if written and enqueue:
        embeddings_enqueue(snapshot_ids=[snapshot.pk])
    return snapshot
