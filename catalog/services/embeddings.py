"""Embedding write services: store a model version's vectors for snapshots and items, mark image state.

Writes are idempotent: a batch's old rows for that version are deleted and the new ones
inserted in one transaction, so re-running a batch (after a crash, a retry, a redelivered
message) leaves exactly one set of vectors per image and version. ``embedding_status`` on an
image describes the version that serves shoppers (the active one). Queueing (and the admin's
retry) is ``catalog.services.embedding_queue``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from django.db import transaction
from django.utils import timezone

from catalog.models import EmbeddingStatus, Item, ItemEmbedding, Snapshot, SnapshotEmbedding

IMAGE_MODELS = {"snapshot": Snapshot, "item": Item}


def _as_list(vector: np.ndarray) -> list[float]:
    return np.asarray(vector, dtype=np.float32).reshape(-1).tolist()


def _usable(vector: np.ndarray) -> bool:
    """A region vector worth storing: finite and not all zeros (padding for absent regions)."""
    array = np.asarray(vector, dtype=np.float32)
    return bool(np.all(np.isfinite(array)) and np.any(array != 0))


def snapshot_embeddings_write(*, model_version, vectors: Mapping[int, np.ndarray]) -> int:
    """Replace ``model_version``'s vectors of the given snapshots; ``vectors[snapshot_id]`` is (regions, dim).

    Region 0 (the global descriptor) is always stored; further regions only when usable.
    Returns the number of rows written.
    """
    rows = []
    for snapshot_id, regions in vectors.items():
        regions = np.asarray(regions, dtype=np.float32)  # (regions, dim)
        if regions.ndim == 1:
            regions = regions[None, :]
        for region, vector in enumerate(regions):
            if region == 0 or _usable(vector):
                rows.append(
                    SnapshotEmbedding(
                        snapshot_id=snapshot_id, model_version=model_version, region=region, vector=_as_list(vector)
                    )
                )
    with transaction.atomic():
        SnapshotEmbedding.objects.filter(model_version=model_version, snapshot_id__in=list(vectors)).delete()
        SnapshotEmbedding.objects.bulk_create(rows)
    return len(rows)


def item_embeddings_write(*, model_version, vectors: Mapping[int, np.ndarray]) -> int:
    """Replace ``model_version``'s vector of the given items; ``vectors[item_id]`` is (dim,)."""
    rows = [
        ItemEmbedding(item_id=item_id, model_version=model_version, vector=_as_list(vector))
        for item_id, vector in vectors.items()
    ]
    with transaction.atomic():
        ItemEmbedding.objects.filter(model_version=model_version, item_id__in=list(vectors)).delete()
        ItemEmbedding.objects.bulk_create(rows)
    return len(rows)


def images_mark_embedded(*, kind: str, ids: Iterable[int]) -> int:
    """The serving version has vectors for these images: status ready, error cleared."""
    return (
        IMAGE_MODELS[kind]
        .objects.filter(pk__in=list(ids))
        .update(embedding_status=EmbeddingStatus.READY, embedding_error="", embedded_at=timezone.now())
    )


def image_mark_embedding_failed(*, kind: str, image_id: int, reason: str) -> None:
    """This image cannot be embedded (unreadable file, ...): status failed with the reason, shown in the admin."""
    IMAGE_MODELS[kind].objects.filter(pk=image_id).update(
        embedding_status=EmbeddingStatus.FAILED, embedding_error=reason[:2000], updated_at=timezone.now()
    )
