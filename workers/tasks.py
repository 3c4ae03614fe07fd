"""Celery tasks. Tasks take ids, import heavy modules in their bodies, and are idempotent.

Queues (routes in settings.CELERY_TASK_ROUTES): "queries" for shopper uploads (low
latency, never behind a re-index), "embedding" for image vectors and re-indexing,
"training" for building, training and evaluating models, "default" for the periodic
sweep and retrain check.
"""

from __future__ import annotations

import logging
import os
import socket

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

try:  # transient broker/backend errors worth a retry
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
        OperationalError,
        InterfaceError,
        KombuOperationalError,
        RedisConnectionError,
        RedisTimeoutError,
    )
except ImportError:  # pragma: no cover - redis is a dependency
    TRANSIENT_ERRORS = (OperationalError, InterfaceError)

RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}


@shared_task(name="workers.echo")
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
    from workers.embedding import embed_images

    ids = [int(i) for i in ids]
    counts = embed_images(kind=kind, ids=ids)
    logger.info("embedded %s %ss (of %d): %s", counts["embedded"], kind, len(ids), counts)
    return counts


@shared_task(name="workers.embed_snapshots", **EMBED_TASK_OPTIONS)
def embed_snapshots(snapshot_ids: list[int]) -> dict:
    """Vectors (up to max_regions per snapshot) for the active version and any version being re-indexed."""
    return _embed("snapshot", snapshot_ids)


@shared_task(name="workers.embed_items", **EMBED_TASK_OPTIONS)
def embed_items(item_ids: list[int]) -> dict:
    """One vector per item for the active version and any version being re-indexed."""
    return _embed("item", item_ids)


@shared_task(
    name="workers.embed_query",
    soft_time_limit=settings.WORKERS_QUERY_TIME_LIMIT_S,
    time_limit=settings.WORKERS_QUERY_TIME_LIMIT_S + 10,
)
def embed_query(image_b64: str, kind: str) -> dict:
    """A shopper's upload as vectors of the active version, in :mod:`recommender.wire`'s format.

    ``kind`` "snapshot": max_regions vectors in region order, region 0 (whole photo) first; "item": one.
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
    else:
        # (max_regions, dim), row r = region r: the web side picks the regions it queries with
        vectors = np.asarray(embedder.embed_snapshots([image]))[0]
    return vectors_encode(vectors, model_version_id=version.pk)


# --- versions: bootstrap, re-index, activate -------------------------------------------------------------


def _run_job(task, *, kind: str, job_id: int | None, arguments: dict, version=None, body):
    """Run ``body(job)`` with the job marked running, then succeeded or failed (and re-raised)."""
    from workers.services import job_fail, job_for_task, job_succeed

    job = job_for_task(job_id=job_id, kind=kind, arguments=arguments, task_id=task.request.id, model_version=version)
    try:
        message = body(job)
    except BaseException as exc:
        retrying = isinstance(exc, tuple(getattr(task, "autoretry_for", ()) or ())) and task.request.retries < (
            task.max_retries or 0
        )
        if not retrying:  # a retried task keeps its job running; otherwise record the failure
            try:
                job_fail(job=job, error=exc)
            except TRANSIENT_ERRORS:
                logger.warning("could not record the failure of job %s", job.pk)
        raise
    job_succeed(job=job, message=message or "")
    return message


@shared_task(name="workers.model_bootstrap", bind=True, acks_late=True, reject_on_worker_lost=True, **RETRY)
def model_bootstrap(self, backbone: str | None = None, job_id: int | None = None) -> dict:
    """Build the off-the-shelf pretrained version if no usable version exists; activate it when none is active,
    then re-index every image for it. Idempotent: a second run finds the version and does nothing."""
    from workers.versioning import bootstrap_pretrained

    backbone = backbone or settings.ML_BACKBONE
    result = {}

    def body(job):
        result.update(bootstrap_pretrained(backbone=backbone, job=job))
        return result.get("message", "")

    _run_job(self, kind="bootstrap", job_id=job_id, arguments={"backbone": backbone}, body=body)
    return result


@shared_task(
    name="workers.reindex_version",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S,
    time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S + 300,
    **RETRY,
)
def reindex_version(self, version_id: int, job_id: int | None = None) -> dict:
    """Embed every image lacking this version's vectors (resumable), then build its vector indexes."""
    from recommender.models import IndexState, ModelVersion, ModelVersionStatus
    from recommender.versions import version_index_state_set
    from workers.embedding import reindex
    from workers.services import job_progress

    version = ModelVersion.objects.get(pk=version_id)
    result = {}

    def body(job):
        done = reindex(version=version, progress=lambda d, t, m: job_progress(job=job, done=d, total=t, message=m))
        version.refresh_from_db()
        if version.status != ModelVersionStatus.FAILED:
            version_index_state_set(version=version, state=IndexState.COMPLETE)
        result.update(done)
        return f"{done['done']} images embedded, {done['failed']} failed"

    _run_job(self, kind="reindex", job_id=job_id, arguments={"version_id": version_id}, version=version, body=body)
    return result


@shared_task(
    name="workers.activate_version",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S,
    time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S + 300,
    **RETRY,
)
def activate_version(self, version_id: int, job_id: int | None = None) -> dict:
    """Re-index the version completely (new vectors beside the old), build its index, then switch in one
    transaction. Used for promotion, the admin's activate action and rollback."""
    from recommender.models import ModelVersion
    from workers.services import job_progress
    from workers.versioning import switch_to

    version = ModelVersion.objects.get(pk=version_id)
    result = {}

    def body(job):
        switch_to(version, progress=lambda d, t, m: job_progress(job=job, done=d, total=t, message=m))
        result.update({"active": version.pk})
        return f"{version.name} is active"

    _run_job(self, kind="activate", job_id=job_id, arguments={"version_id": version_id}, version=version, body=body)
    return result


# --- training ------------------------------------------------------------------------------------------


@shared_task(
    name="workers.train_version",
    bind=True,
    soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S,
    time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S + 300,
)
def train_version(self, job_id: int | None = None, config_overrides: dict | None = None) -> dict:
    """Train a version on all published posts, evaluate it and the active one on the held-out posts, and
    promote it (re-index + switch) only if it wins on ML_PROMOTION_METRIC; otherwise it stays ready."""
    from workers.services import job_progress
    from workers.versioning import train_evaluate_promote

    result = {}

    def body(job):
        def progress(fraction: float, message: str = "") -> None:
            job_progress(job=job, done=int(round(1000 * float(fraction))), total=1000, message=str(message))

        result.update(train_evaluate_promote(job=job, progress=progress, config_overrides=config_overrides))
        return result["decision"]

    _run_job(self, kind="train", job_id=job_id, arguments={"config_overrides": config_overrides}, body=body)
    return result


@shared_task(name="workers.evaluate_version", bind=True, soft_time_limit=settings.WORKERS_TRAIN_TIME_LIMIT_S)
def evaluate_version(self, version_id: int, job_id: int | None = None, promote: bool = False) -> dict:
    """Evaluate a version and the active one on the held-out posts; store metrics and the decision.
    With ``promote`` a winning version is activated (re-index + switch)."""
    from recommender.models import ModelVersion
    from workers.versioning import evaluate_and_decide

    version = ModelVersion.objects.get(pk=version_id)
    result = {}

    def body(job):
        result.update(evaluate_and_decide(version, promote=promote))
        return result["decision"]

    arguments = {"version_id": version_id, "promote": promote}
    _run_job(self, kind="evaluate", job_id=job_id, arguments=arguments, version=version, body=body)
    return result


# --- periodic -----------------------------------------------------------------------------------------------


@shared_task(name="workers.embedding_sweep", **RETRY)
def embedding_sweep() -> dict:
    """Every minute: build the first model if there is none, resume a dead re-index, enqueue pending images."""
    from workers.embedding import sweep
    from workers.versioning import bootstrap_if_needed, resume_stale_reindex

    return {
        "bootstrap": bootstrap_if_needed(),
        "resumed": resume_stale_reindex(),
        "enqueued": sweep(),
    }


@shared_task(name="workers.style_graphs_ensure", **RETRY)
def style_graphs_ensure() -> dict:
    """Hourly: styles that grew past ``RECOMMENDER_STYLE_INDEX_MIN_ROWS`` since the active version was
    indexed get their own graph (recommender.indexes); answers were right without it, only slower."""
    from recommender.indexes import vector_index_ensure
    from recommender.models import ModelVersion

    version = ModelVersion.objects.active().first()
    if version is None or not version.dim:
        return {"version": None}
    vector_index_ensure(model_version=version)
    return {"version": version.pk}


@shared_task(name="workers.retrain_check", **RETRY)
def retrain_check() -> dict:
    """Nightly: train a new version when at least ML_RETRAIN_MIN_NEW_POSTS posts arrived since the last training."""
    from workers.models import Job, JobKind
    from workers.services import job_enqueue
    from workers.training import new_posts_since_last_training

    new_posts = new_posts_since_last_training()
    if new_posts < settings.ML_RETRAIN_MIN_NEW_POSTS:
        return {"new_posts": new_posts, "started": False}
    if Job.objects.unfinished().filter(kind=JobKind.TRAIN).exists():
        return {"new_posts": new_posts, "started": False, "reason": "a training job is already queued or running"}
    job = job_enqueue(kind=JobKind.TRAIN)
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
