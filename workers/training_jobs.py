"""Training runs as jobs: queue one (never two at once), keep its heartbeat while it runs, and mark a run
whose worker stopped (killed, or `make run` stopped with Ctrl-C) as interrupted, so that it can be started
again. An interrupted run is never restarted on its own: a training run takes long, and staff decide.

No TensorFlow here: the admin (web process) queues training through :func:`training_enqueue`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from recommender.models import ModelVersion, ModelVersionStatus
from recommender.versions import version_mark_failed
from workers.models import Job, JobKind, JobStatus
from workers.services import job_enqueue

logger = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the worker stopped during training; start it again with Retrain now"
_ENQUEUE_LOCK = 0x4C4B5452  # PostgreSQL advisory lock key: two clicks on Retrain now queue one run


class TrainingAlreadyQueued(ValueError):
    """A training job is already queued or running; ``job`` is that one."""

    def __init__(self, job: Job) -> None:
        self.job = job
        state = "running" if job.status == JobStatus.RUNNING else "queued, waiting for the training worker"
        super().__init__(f"Training job #{job.pk} is already {state}; a new run can start once it has finished.")


def training_enqueue(*, config_overrides: dict | None = None) -> Job:
    """Queue a training run (a new version from all published posts) unless one is already queued or running
    (:class:`TrainingAlreadyQueued`). A run whose worker stopped is marked interrupted first, so it does not
    block a new one."""
    interrupted_training_mark()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ENQUEUE_LOCK])
        unfinished = Job.objects.unfinished().filter(kind=JobKind.TRAIN).order_by("created_at").first()
        if unfinished is not None:
            raise TrainingAlreadyQueued(unfinished)
        arguments = {"config_overrides": config_overrides} if config_overrides else {}
        return job_enqueue(kind=JobKind.TRAIN, arguments=arguments)


@contextmanager
def training_heartbeat(job: Job | None, *, every_s: float | None = None) -> Iterator[None]:
    """While the block runs, touch the job's heartbeat every ``every_s`` seconds (WORKERS_TRAIN_HEARTBEAT_S)
    from a thread, so a run stays visibly alive through long stretches without progress (an epoch); once its
    worker stops, the heartbeat stops and :func:`interrupted_training_mark` finds the run."""
    if job is None:
        yield
        return
    every_s = settings.WORKERS_TRAIN_HEARTBEAT_S if every_s is None else every_s
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(every_s):
                try:
                    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next; the run goes on
                    logger.warning("could not record the heartbeat of job %s", job.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"job-{job.pk}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s + 30)


def interrupted_training_mark() -> list[int]:
    """Mark failed, as interrupted, every running training job whose heartbeat is older than
    WORKERS_TRAIN_STALE_S, and its version still being trained or evaluated, with the same reason (the
    active version is never failed). Returns the jobs' ids. Run at each worker's start and by the sweep."""
    stale_before = timezone.now() - timedelta(seconds=settings.WORKERS_TRAIN_STALE_S)
    stale = Q(kind=JobKind.TRAIN, status=JobStatus.RUNNING) & (
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, started_at__lt=stale_before)
    )
    marked = []
    for job in Job.objects.filter(stale).select_related("model_version"):
        now = timezone.now()
        # Conditional: a beat that came in since the query keeps the run alive.
        if not Job.objects.filter(stale, pk=job.pk).update(
            status=JobStatus.FAILED, error=INTERRUPTED, finished_at=now, heartbeat_at=now
        ):
            continue
        version = job.model_version
        if version is not None and version.status in (ModelVersionStatus.TRAINING, ModelVersionStatus.EVALUATING):
            version_mark_failed(version=version, reason=INTERRUPTED)
        logger.warning("training job %s was interrupted (no heartbeat since %s)", job.pk, job.heartbeat_at)
        marked.append(job.pk)
    _orphaned_versions_fail()
    return marked


def _orphaned_versions_fail() -> None:
    """A version still training or evaluating whose training job ended without finishing it (the job
    recorded an exit that no ``except Exception`` saw, such as a SystemExit in the pool child)."""
    unfinished = Job.objects.unfinished().values("model_version_id")
    orphans = (
        ModelVersion.objects.filter(
            status__in=[ModelVersionStatus.TRAINING, ModelVersionStatus.EVALUATING], jobs__kind=JobKind.TRAIN
        )
        .exclude(pk__in=unfinished.filter(model_version_id__isnull=False))
        .distinct()
    )
    for version in orphans:
        version_mark_failed(version=version, reason=INTERRUPTED)
