"""Job services: record a background job, its progress and its outcome; re-enqueue a failed one."""

from __future__ import annotations

import traceback

from django.db import transaction
from django.utils import timezone

from workers.models import Job, JobKind, JobStatus

# The Celery task behind each job kind (sent by name: the web process never imports the tasks' heavy modules).
JOB_TASKS = {
    JobKind.REINDEX: "workers.reindex_version",
    JobKind.ACTIVATE: "workers.activate_version",
    JobKind.BOOTSTRAP: "workers.model_bootstrap",
    JobKind.TRAIN: "workers.train_version",
    JobKind.EVALUATE: "workers.evaluate_version",
}


def job_enqueue(*, kind: str, arguments: dict | None = None, model_version=None) -> Job:
    """Create a queued job and send its task (after commit) with ``job_id`` among the keyword arguments."""
    from workers.celery import app

    arguments = dict(arguments or {})
    with transaction.atomic():
        job = Job.objects.create(kind=kind, arguments=arguments, model_version=model_version)

        def send() -> None:
            result = app.send_task(JOB_TASKS[kind], kwargs={**arguments, "job_id": job.pk})
            Job.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")

        transaction.on_commit(send)
    return job


def job_for_task(*, job_id: int | None, kind: str, arguments: dict, task_id: str | None, model_version=None) -> Job:
    """The job row a task reports to: the one it was enqueued with, or a new one (task sent directly or by beat)."""
    job = Job.objects.filter(pk=job_id).first() if job_id else None
    if job is None:
        job = Job.objects.create(kind=kind, arguments=arguments, model_version=model_version)
    now = timezone.now()
    job.status = JobStatus.RUNNING
    job.started_at = job.started_at or now
    job.heartbeat_at = now
    job.attempts += 1
    job.celery_task_id = task_id or job.celery_task_id
    job.error = ""
    if model_version is not None:
        job.model_version = model_version
    job.save()
    return job


def job_progress(*, job: Job, done: int, total: int, message: str = "") -> None:
    """Progress and heartbeat in one UPDATE (the sweep resumes re-index jobs whose heartbeat stops)."""
    job.progress_done, job.progress_total = done, total
    job.message = message[:500] or job.message
    job.heartbeat_at = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        progress_done=done, progress_total=total, message=job.message, heartbeat_at=job.heartbeat_at
    )


def job_succeed(*, job: Job, message: str = "") -> None:
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, message=message[:500] or job.message, finished_at=now, heartbeat_at=now, error=""
    )


def job_fail(*, job: Job, error: BaseException | str) -> None:
    text = error if isinstance(error, str) else "".join(traceback.format_exception(error))
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, error=text[-10000:], finished_at=now, heartbeat_at=now
    )


def job_retry(*, job: Job) -> Job:
    """Re-enqueue a failed (or stuck) job as a new job with the same arguments."""
    if job.kind not in JOB_TASKS:
        raise ValueError(f"jobs of kind {job.kind!r} cannot be retried from here; retry the images instead")
    return job_enqueue(kind=job.kind, arguments=job.arguments, model_version=job.model_version)
