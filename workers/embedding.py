"""Embedding work done inside the workers: batches of images, whole-version re-index, the periodic sweep.

Every write goes through ``catalog.services.embeddings`` (an idempotent upsert per batch, one
transaction), so a batch can be re-run at any time: after a crash, a retry, a redelivered
message. The re-index skips images that already have the version's vectors, which makes it
resumable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from catalog.embedding_targets import KINDS, target
from catalog.models import EmbeddingStatus
from catalog.services.embedding_queue import embeddings_enqueue
from catalog.services.embeddings import embeddings_write, image_mark_embedding_failed, images_mark_embedded
from recommender.models import IndexState, ModelVersion, ModelVersionStatus
from workers.ml_runtime import ArtifactUnavailable, BadImage, embedder_for, open_image

logger = logging.getLogger(__name__)


def _chunks(seq: Sequence, size: int):
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _embed(embedder, kind: str, images: list) -> tuple[list[np.ndarray], list[list[dict]] | None]:
    """Per image: its vectors ((max_regions, dim) for snapshots, (dim,) for items); for snapshots also
    its garments (``ml.model.Looks.garment_records``, empty under a window scheme), None for items."""
    entry = target(kind)
    described = getattr(embedder, entry.embed_method)(images)
    if not entry.regions:
        return list(np.asarray(described)), None
    return list(described.vectors), [described.garment_records(i) for i in range(len(images))]


def _embed_batch(
    embedder, kind: str, loaded: dict[int, object]
) -> tuple[dict[int, np.ndarray], dict[int, list[dict]] | None, dict[int, str]]:
    """Vectors (and snapshot garments) per image id; when the batch as a whole fails, images one by one
    to find the bad ones."""
    ids = list(loaded)
    try:
        vectors, garments = _embed(embedder, kind, [loaded[i] for i in ids])
        return (
            dict(zip(ids, vectors, strict=True)),
            None if garments is None else dict(zip(ids, garments, strict=True)),
            {},
        )
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - isolate the image that breaks the model
        if len(ids) == 1:
            raise
    vectors, garments, failures = {}, {}, {}
    for image_id in ids:
        try:
            one, found = _embed(embedder, kind, [loaded[image_id]])
        except Exception as exc:  # noqa: BLE001 - recorded on the image, the rest of the batch goes on
            failures[image_id] = f"the model could not embed this image: {exc}"
            continue
        vectors[image_id] = one[0]
        if found is not None:
            garments[image_id] = found[0]
    return vectors, (garments if target(kind).regions else None), failures


def embed_images(
    *,
    kind: str,
    ids: Sequence[int],
    versions: Sequence[ModelVersion] | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    skip_embedded: bool = False,
) -> dict:
    """Embed these images for ``versions`` (default: the active version and any being re-indexed).

    A bad image is marked failed with its reason; the others go on. With ``skip_embedded`` an image
    already ready with every version's vectors is skipped (a second message for it costs a query, not
    a model call; the embedding tasks pass it). Returns counts. Raises
    :class:`ArtifactUnavailable` only when the active version's artifact is unusable (a
    re-indexed version with a bad artifact is marked failed and dropped from this run).
    """
    owner = target(kind).owner  # ValueError for an unknown kind
    batch_size = batch_size or settings.ML_EMBED_BATCH_SIZE
    versions = list(versions if versions is not None else ModelVersion.objects.embedding_targets().order_by("pk"))
    counts = {"embedded": 0, "failed": 0, "missing": 0, "skipped": 0, "versions": [v.pk for v in versions]}
    if not versions:
        logger.info("no model version to embed %d %ss for yet; they stay pending", len(ids), kind)
        return counts
    embedders = {}
    for version in versions:
        try:
            embedders[version.pk] = embedder_for(version)
        except ArtifactUnavailable:
            if version.status == ModelVersionStatus.ACTIVE:
                raise
    versions = [v for v in versions if v.pk in embedders]
    counts["versions"] = [v.pk for v in versions]
    serving = any(v.status == ModelVersionStatus.ACTIVE for v in versions)

    rows = owner.objects.filter(pk__in=list(ids))
    counts["missing"] = len(set(ids)) - rows.count()
    if skip_embedded:
        done = embedded_ids(kind=kind, ids=ids, versions=versions)
        rows = rows.exclude(pk__in=done)
        counts["skipped"] = len(done)
    rows = list(rows.order_by("pk").only("pk", "image"))
    for chunk in _chunks(rows, batch_size):
        loaded: dict[int, object] = {}
        for row in chunk:
            try:
                if not row.image:
                    raise BadImage("no image file")
                loaded[row.pk] = open_image(row.image.path)
            except BadImage as exc:
                image_mark_embedding_failed(kind=kind, image_id=row.pk, reason=str(exc))
                counts["failed"] += 1
        if not loaded:
            continue
        embedded = set(loaded)
        for version in versions:
            vectors, garments, failures = _embed_batch(embedders[version.pk], kind, loaded)
            for image_id, reason in failures.items():
                image_mark_embedding_failed(kind=kind, image_id=image_id, reason=reason)
            embedded &= set(vectors)
            embeddings_write(kind=kind, model_version=version, vectors=vectors, garments=garments)
        counts["failed"] += len(loaded) - len(embedded)
        counts["embedded"] += len(embedded)
        if serving:
            images_mark_embedded(kind=kind, ids=embedded)
        if on_batch:
            on_batch(len(chunk))
    return counts


def embedded_ids(*, kind: str, ids: Sequence[int], versions: Sequence[ModelVersion]) -> list[int]:
    """Of these images, those ready with vectors of every one of ``versions``: nothing left to do for them."""
    entry = target(kind)
    done = entry.owner.objects.filter(pk__in=list(ids), embedding_status=EmbeddingStatus.READY)
    for version in versions:
        vectors = entry.embedding.objects.filter(**{entry.kind: OuterRef("pk")}, model_version=version)
        done = done.filter(Exists(vectors))
    return list(done.values_list("pk", flat=True))


# --- re-index ---------------------------------------------------------------------------------


def missing_ids(*, kind: str, version: ModelVersion) -> list[int]:
    """Images (not failed) without ``version``'s vectors, oldest first."""
    entry = target(kind)
    has = Exists(entry.embedding.objects.filter(**{entry.kind: OuterRef("pk")}, model_version=version))
    return list(
        entry.owner.objects.exclude(embedding_status=EmbeddingStatus.FAILED)
        .exclude(has)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def reindex(*, version: ModelVersion, progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Give ``version`` vectors for every image that lacks them (resumable: done images are skipped),
    then build its vector indexes. Progress goes to ``version.index_progress`` and ``progress``."""
    from recommender.versions import version_index_progress_set, version_index_state_set

    embedder_for(version)  # fail fast (and mark failed) on a bad artifact
    if version.index_state != IndexState.INDEXING:
        version_index_state_set(version=version, state=IndexState.INDEXING)
    todo = {kind: missing_ids(kind=kind, version=version) for kind in KINDS}
    total = sum(len(ids) for ids in todo.values())
    state = {"done": 0, "failed": 0}
    logger.info("re-index of %s: %d images to embed", version.name, total)

    def report(kind: str) -> None:
        version_index_progress_set(version=version, done=state["done"], total=total, failed=state["failed"])
        if progress:
            progress(state["done"], total, f"{kind}s: {state['done']}/{total} embedded")

    report("image")
    chunk_size = max(settings.ML_EMBED_BATCH_SIZE * 4, 32)
    for kind in KINDS:
        for chunk in _chunks(todo[kind], chunk_size):
            counts = embed_images(kind=kind, ids=chunk, versions=[version])
            state["done"] += len(chunk)
            state["failed"] += counts["failed"]
            report(kind)
    vector_indexes_ensure(version)
    return {"total": total, **state}


def vector_indexes_ensure(version: ModelVersion) -> None:
    """Build the version's HNSW indexes (the recommender's ``vector_index_ensure``)."""
    from recommender.indexes import vector_index_ensure

    vector_index_ensure(model_version=version)


# --- periodic sweep ---------------------------------------------------------------------------


def sweep(*, now=None) -> dict:
    """Enqueue embedding (at the bulk priority) for images pending longer than the grace period that have no
    message out: never queued, or queued (or started) more than ``WORKERS_REQUEUE_AFTER_S`` ago, so the
    message was lost. An image still waiting in the queue or being embedded is left alone. Returns how many
    of each kind."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WORKERS_SWEEP_GRACE_S)
    lost = now - timedelta(seconds=settings.WORKERS_REQUEUE_AFTER_S)
    result = {}
    for kind in KINDS:
        ids = list(
            target(kind)
            .owner.objects.filter(embedding_status=EmbeddingStatus.PENDING, updated_at__lte=cutoff)
            .filter(Q(embedding_queued_at__isnull=True) | Q(embedding_queued_at__lte=lost))
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.WORKERS_SWEEP_BATCH]
        )
        if ids:
            embeddings_enqueue(**{f"{kind}_ids": ids}, priority="bulk")  # marks them queued as it sends
        result[kind] = len(ids)
    return result
