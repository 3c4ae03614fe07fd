"""Embedding write services: store a model version's vectors for snapshots and items, mark image state.

Writes are idempotent upserts (INSERT ... ON CONFLICT DO UPDATE on the unique keys, rows in
key order, regions no longer produced deleted, all in one transaction): re-running a batch
(after a crash, a retry, a redelivered message), even concurrently with another worker
embedding the same image, leaves exactly one set of vectors per image and version. ``embedding_status`` on an
image describes the version that serves shoppers (the active one). Queueing (and the admin's
retry) is ``catalog.services.embedding_queue``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.embedding_targets import target
from catalog.models import EmbeddingStatus, ItemEmbedding, SnapshotEmbedding, SnapshotGarment


def _as_list(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def _usable(vector: np.ndarray) -> bool:
    """A region vector worth storing: finite and not all zeros (padding for absent regions)."""
    array = np.asarray(vector, dtype=np.float32)
    return bool(np.all(np.isfinite(array)) and np.any(array != 0))


GARMENT_FIELDS = ("group", "box", "outline", "confidence", "area", "region")


def _garment_rows(snapshot_id: int, model_version, found: Sequence[Mapping], regions: set[int]) -> list:
    """The garments of one snapshot as rows; each must name one of its stored regions (``ValueError``)."""
    rows = []
    for garment in found:
        missing = [name for name in GARMENT_FIELDS if name not in garment]
        if missing:
            raise ValueError(f"garment of snapshot {snapshot_id} lacks {', '.join(missing)}")
        region = int(garment["region"])
        if region not in regions or region == 0:
            raise ValueError(f"garment of snapshot {snapshot_id} names region {region}, which has no stored vector")
        box = [float(v) for v in garment["box"]]
        if len(box) != 4 or not all(0.0 <= v <= 1.0 for v in box) or box[0] >= box[2] or box[1] >= box[3]:
            raise ValueError(f"garment of snapshot {snapshot_id} has a bad box {box!r}")
        rows.append(
            SnapshotGarment(
                snapshot_id=snapshot_id,
                model_version=model_version,
                region=region,
                group=str(garment["group"]),
                box=box,
                outline=garment["outline"],
                confidence=float(garment["confidence"]),
                area=float(garment["area"]),
            )
        )
    return rows


def snapshot_embeddings_write(
    *,
    model_version,
    vectors: Mapping[int, np.ndarray],
    garments: Mapping[int, Sequence[Mapping]] | None = None,
) -> int:
    """Replace ``model_version``'s vectors of the given snapshots; ``vectors[snapshot_id]`` is (regions, dim).

    Region 0 (the global descriptor) is always stored; further regions only when usable and not a copy
    of region 0 (the garment scheme pads a snapshot with fewer garments than rows with row 0).
    ``garments[snapshot_id]`` (records of ``ml.model.Looks.garment_records``: group, box, outline,
    confidence, area and the region of its vector) replaces that snapshot's garments of the version,
    in the same transaction as its vectors; a snapshot left out of ``garments`` (or ``garments`` None)
    keeps its garments. Returns the number of vector rows written.
    """
    rows = []
    kept: dict[int, list[int]] = {}
    for snapshot_id in sorted(vectors):
        regions = np.asarray(vectors[snapshot_id], dtype=np.float32)  # (regions, dim)
        if regions.ndim == 1:
            regions = regions[None, :]
        for region, vector in enumerate(regions):
            if region == 0 or (_usable(vector) and not np.array_equal(vector, regions[0])):
                kept.setdefault(snapshot_id, []).append(region)
                rows.append(
                    SnapshotEmbedding(
                        snapshot_id=snapshot_id, model_version=model_version, region=region, vector=_as_list(vector)
                    )
                )
    if not rows:
        return 0
    garment_rows = [
        row
        for snapshot_id in sorted(garments or {})
        if snapshot_id in kept
        for row in _garment_rows(snapshot_id, model_version, garments[snapshot_id], set(kept[snapshot_id]))
    ]
    stale = Q()
    for snapshot_id, regions in kept.items():
        stale |= Q(snapshot_id=snapshot_id) & ~Q(region__in=regions)
    with transaction.atomic():
        SnapshotEmbedding.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["snapshot", "model_version", "region"],
            update_fields=["vector"],
        )
        SnapshotEmbedding.objects.filter(stale, model_version=model_version).delete()
        if garments is not None:
            replaced = [snapshot_id for snapshot_id in garments if snapshot_id in kept]
            SnapshotGarment.objects.filter(model_version=model_version, snapshot_id__in=replaced).delete()
            SnapshotGarment.objects.bulk_create(garment_rows)
    return len(rows)


def item_embeddings_write(*, model_version, vectors: Mapping[int, np.ndarray]) -> int:
    """Replace ``model_version``'s vector of the given items; ``vectors[item_id]`` is (dim,)."""
    rows = [
        ItemEmbedding(item_id=item_id, model_version=model_version, vector=_as_list(vectors[item_id]))
        for item_id in sorted(vectors)
    ]
    if rows:
        ItemEmbedding.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["item", "model_version"], update_fields=["vector"]
        )
    return len(rows)


def embeddings_write(
    *,
    kind: str,
    model_version,
    vectors: Mapping[int, np.ndarray],
    garments: Mapping[int, Sequence[Mapping]] | None = None,
) -> int:
    """:func:`snapshot_embeddings_write` (with the snapshots' ``garments``) or :func:`item_embeddings_write`."""
    if target(kind).regions:
        return snapshot_embeddings_write(model_version=model_version, vectors=vectors, garments=garments)
    return item_embeddings_write(model_version=model_version, vectors=vectors)


def images_mark_embedded(*, kind: str, ids: Iterable[int]) -> int:
    """The serving version has vectors for these images: status ready, error cleared."""
    return (
        target(kind)
        .owner.objects.filter(pk__in=list(ids))
        .update(embedding_status=EmbeddingStatus.READY, embedding_error="", embedded_at=timezone.now())
    )


def image_mark_embedding_failed(*, kind: str, image_id: int, reason: str) -> None:
    """This image cannot be embedded (unreadable file, ...): status failed with the reason, shown in the admin."""
    target(kind).owner.objects.filter(pk=image_id).update(
        embedding_status=EmbeddingStatus.FAILED, embedding_error=reason[:2000], updated_at=timezone.now()
    )
