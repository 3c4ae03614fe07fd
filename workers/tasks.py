"""Celery tasks. Tasks take ids, import heavy modules in their bodies, and are idempotent.

Names and queues come from :mod:`workers.registry`; the job tasks' bookkeeping (the Job row's
status, attempts, message and error) from :class:`workers.jobs.JobTask`'s hooks.
"""

from __future__ import annotations

import logging
import os
import socket

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from workers import registry
from workers.jobs import RETRY, JobTask

logger = logging.getLogger(__name__)


@shared_task(name=registry.ECHO.name)
def echo(payload: dict) -> dict:
    """Round-trip check used by health checks and integration tests: returns the payload and who ran it."""
    return {"payload": payload, "hostname": socket.gethostname(), "pid": os.getpid()}


# --- embedding -----------------------------------------------------------------------------------


# Embedding batches are idempotent upserts, so a batch lost with its worker is safely redelivered.
EMBED_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "soft_time_limit": settings.WORKERS_EMBED_TIME_LIMIT_S,
    "time_limit": settings.WORKERS_EMBED_TIME_LIMIT_S + 60,
    **RETRY,
}


def _embed(kind: str, ids: list[int]) -> dict:
    from catalog.services.embedding_queue import images_mark_queued
    from workers.embedding import embed_images

    ids = [int(i) for i in ids]
    # Marked again on start: the sweep leaves a running batch alone as it does a queued one.
    images_mark_queued(kind=kind, ids=ids)
    # A second message for an embedded image (the sweep took the first as lost) costs no model call.
    counts = embed_images(kind=kind, ids=ids, skip_embedded=True)
    logger.info("embedded %s %ss (of %d): %s", counts["embedded"], kind, len(ids), counts)
    return counts


@shared_task(name=registry.EMBED_SNAPSHOTS.name, **EMBED_TASK_OPTIONS)
def embed_snapshots(snapshot_ids: list[int]) -> dict:
    """Vectors (up to max_regions per snapshot) for the active version and any version being re-indexed."""
    return _embed("snapshot", snapshot_ids)


@shared_task(name=registry.EMBED_ITEMS.name, **EMBED_TASK_OPTIONS)
def embed_items(item_ids: list[int]) -> dict:
    """One vector per item for the active version and any version being re-indexed."""
    return _embed("item", item_ids)


@shared_task(
    name=registry.EMBED_QUERY.name,
    soft_time_limit=settings.WORKERS_QUERY_TIME_LIMIT_S,
    time_limit=settings.WORKERS_QUERY_TIME_LIMIT_S + 10,
)
def embed_query(image_b64: str, kind: str) -> dict:
    """A shopper's upload as vectors of the active version, in :mod:`recommender.wire`'s format.

    ``kind`` "snapshot": max_regions vectors in region order, region 0 (whole photo) first, and the
    garments found on it (``garments``: group, box, outline, confidence, region); "item": one vector.
    Raises ValueError for a bad upload or kind (the caller shows a 4xx), RuntimeError when no
    version is active yet.
    """
    import numpy as np

    from recommender.models import ModelVersion
    from recommender.wire import vectors_encode
    from workers.ml_runtime import decode_b64_image, embedder_for

    if kind not in ("snapshot", "item"):
        raise ValueError(f"kind must be 'snapshot' or 'item', not {kind!r}")
    image = decode_b64_image(image_b64, max_bytes=settings.CATALOG_MAX_UPLOAD_BYTES)
    version = ModelVersion.objects.active().first()
    if version is None:
        raise RuntimeError("no model version is active yet; the first one is being built")
    embedder = embedder_for(version)
    if kind == "item":
        vectors = np.asarray(embedder.embed_items([image]))[:1]  # (1, dim)
        return vectors_encode(vectors, model_version_id=version.pk)
    # (max_regions, dim), row r = region r: the web side picks the regions it queries with; with the
    # garments found on the photo (each naming its row), as the embedding worker stores them
    looks = embedder.embed_looks([image])
    return vectors_encode(np.asarray(looks.vectors)[0], model_version_id=version.pk, garments=looks.garment_records(0))


# --- versions and training: jobs (workers.jobs.JobTask keeps each one's Job row) --------------------------

# Re-index and activate embed every image and may run for hours, longer than the broker's visibility
# timeout, after which a late-acknowledged message would be given to a second worker while the first
# still runs. So they acknowledge on start, and a run lost with its worker is resumed by the sweep
# (its heartbeat stops: workers.versioning.resume_stale_reindex); the work is resumable.
VERSION_JOB_OPTIONS = {
    "base": JobTask,
    "bind": True,
    "acks_late": False,
    "soft_time_limit": settings.WORKERS_TRAIN_TIME_LIMIT_S,
    "time_limit": settings.WORKERS_TRAIN_TIME_LIMIT_S + 300,
    **RETRY,
}


@shared_task(
    name=registry.MODEL_BOOTSTRAP.name,
    base=JobTask,
    bind=True,
    acks_late=False,  # re-indexes the catalog: as VERSION_JOB_OPTIONS (the sweep resumes a lost run)
    success_message="{message}",
    setting_defaults={"backbone": "ML_BACKBONE", "model": "ML_BOOTSTRAP_MODEL"},
    **RETRY,
)
def model_bootstrap(self, backbone: str | None = None, model: str | None = None, job_id: int | None = None) -> dict:
    """Build the first version (ML_BOOTSTRAP_MODEL: the shipped trained model, or the off-the-shelf one) if no
    usable version exists; activate it when none is active, then re-index every image for it. Idempotent: a
    second run finds the version and does nothing."""
    from workers.versioning import bootstrap_first_version

    return bootstrap_first_version(
        backbone=backbone or settings.ML_BACKBONE, model=model or settings.ML_BOOTSTRAP_MODEL, job=self.job
    )


@shared_task(
    name=registry.REINDEX_VERSION.name,
    success_message="{done} images embedded, {failed} failed",
    **VERSION_JOB_OPTIONS,
)
def reindex_version(self, version_id: int, job_id: int | None = None) -> dict:
    """Embed every image lacking this version's vectors (resumable), then build its vector indexes."""
    from workers.versioning import job_progress_callback, reindex_and_complete

    job = self.job
    return reindex_and_complete(job.model_version, progress=job_progress_callback(job))


@shared_task(name=registry.ACTIVATE_VERSION.name, success_message="{version.name} is active", **VERSION_JOB_OPTIONS)
def activate_version(self, version_id: int, job_id: int | None = None) -> dict:
    """Re-index the version completely (new vectors beside the old), build its index, then switch in one
    transaction. Used for promotion, the admin's activate action and rollback."""
    from workers.versioning import job_progress_callback, switch_to

    job = self.job
    switch_to(job.model_version, progress=job_progress_callback(job))
    return {"active": job.model_version.pk}


@shared_task(
    name=registry.TRAIN_VERSION.name,
    base=JobTask,
    bind=True,
    soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S,
    time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S + 300,
    success_message="{decision}",
)
def train_version(self, job_id: int | None = None, config_overrides: dict | None = None) -> dict:
    """Train a version on all published posts, evaluate it and the active one on the held-out posts, and
    promote it (re-index + switch) only if it wins on ML_PROMOTION_METRIC; otherwise it stays ready."""
    from workers.services import job_progress
    from workers.versioning import train_evaluate_promote

    job = self.job

    def progress(fraction: float, message: str = "") -> None:
        job_progress(job=job, done=int(round(1000 * float(fraction))), total=1000, message=str(message))

    return train_evaluate_promote(job=job, progress=progress, config_overrides=config_overrides)


@shared_task(
    name=registry.EVALUATE_VERSION.name,
    base=JobTask,
    bind=True,
    soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S,
    success_message="{decision}",
)
def evaluate_version(self, version_id: int, job_id: int | None = None, promote: bool = False) -> dict:
    """Evaluate a version and the active one on the held-out posts; store metrics and the decision.
    With ``promote`` a winning version is activated (re-index + switch)."""
    from workers.versioning import evaluate_and_decide

    return evaluate_and_decide(self.job.model_version, promote=promote)


# --- periodic -----------------------------------------------------------------------------------------------


@shared_task(name=registry.EMBEDDING_SWEEP.name, **RETRY)
def embedding_sweep() -> dict:
    """Every minute: build the first model if there is none, resume a dead re-index, mark a training run whose
    worker stopped as interrupted, enqueue pending images."""
    from workers.embedding import sweep
    from workers.training_jobs import interrupted_training_mark
    from workers.versioning import bootstrap_if_needed, resume_stale_reindex

    return {
        "bootstrap": bootstrap_if_needed(),
        "resumed": resume_stale_reindex(),
        "interrupted": interrupted_training_mark(),
        "enqueued": sweep(),
    }


@shared_task(name=registry.STYLE_GRAPHS_ENSURE.name, **RETRY)
def style_graphs_ensure() -> dict:
    """Hourly: styles that grew past ``RECOMMENDER_STYLE_INDEX_MIN_ROWS`` and garment groups past
    ``RECOMMENDER_GARMENT_INDEX_MIN_ROWS`` since the active version was indexed get their own graph, and a
    group whose categories changed gets a new one (recommender.indexes); answers were right without them,
    only slower."""
    from recommender.indexes import vector_index_ensure
    from recommender.models import ModelVersion

    version = ModelVersion.objects.active().first()
    if version is None or not version.dim:
        return {"version": None}
    vector_index_ensure(model_version=version)
    return {"version": version.pk}


@shared_task(name=registry.RETRAIN_CHECK.name, **RETRY)
def retrain_check() -> dict:
    """Nightly: train a new version when at least ML_RETRAIN_MIN_NEW_POSTS posts arrived since the last training."""
    from workers.training import new_posts_since_last_training
    from workers.training_jobs import TrainingAlreadyQueued, training_enqueue

    new_posts = new_posts_since_last_training()
    if new_posts < settings.ML_RETRAIN_MIN_NEW_POSTS:
        return {"new_posts": new_posts, "started": False}
    try:
        job = training_enqueue()
    except TrainingAlreadyQueued:
        return {"new_posts": new_posts, "started": False, "reason": "a training job is already queued or running"}
    return {"new_posts": new_posts, "started": True, "job_id": job.pk}


@worker_ready.connect
def _bootstrap_on_worker_start(sender=None, **kwargs) -> None:
    """The first worker to start on a fresh install builds the pretrained model (via the training queue)."""
    if not settings.WORKERS_BOOTSTRAP_ON_START:
        return
    try:
        from workers.versioning import bootstrap_if_needed

        bootstrap_if_needed()
    except Exception:  # noqa: BLE001 - never keep a worker from starting; the sweep tries again
        logger.exception("could not check for a model version at worker start")
    finally:
        from django.db import connection

        connection.close()  # the main process keeps no connection a later pool child could inherit


@worker_ready.connect
def _interrupted_training_on_worker_start(sender=None, **kwargs) -> None:
    """A worker starting (again, after it was killed or `make run` was stopped) marks a training run whose
    worker stopped as interrupted, so staff see it and can start it again; the sweep does so too."""
    try:
        from workers.training_jobs import interrupted_training_mark

        interrupted_training_mark()
    except Exception:  # noqa: BLE001 - never keep a worker from starting; the sweep tries again
        logger.exception("could not check for interrupted training at worker start")
    finally:
        from django.db import connection

        connection.close()
