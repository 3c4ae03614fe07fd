"""Job services: record a background job, its progress and its outcome; re-enqueue a failed one."""

from __future__ import annotations

import traceback

from django.db import transaction
from django.utils import timezone

from workers.models import Job, JobStatus
from workers.registry import task_for_job


def job_enqueue(*, kind: str, arguments: dict | None = None, model_version=None) -> Job:
    """Create a queued job and send its task (after commit) with ``job_id`` among the keyword arguments."""
    from workers.celery import app

    task = task_for_job(kind)
    if task is None:
        raise ValueError(f"no task runs jobs of kind {kind!r}")
    arguments = dict(arguments or {})
    with transaction.atomic():
        job = Job.objects.create(kind=kind, arguments=arguments, model_version=model_version)

        def send() -> None:
            # by name: the web process never imports the tasks' heavy modules
            result = app.send_task(task.name, kwargs={**arguments, "job_id": job.pk}, queue=task.queue)
            Job.objects.filter(pk=job.pk).update(celery_task_id=result.id or "")

        transaction.on_commit(send)
    return job


def job_start(*, job_id: int | None, kind: str, arguments: dict, task_id: str | None, model_version=None) -> Job:
    """Mark running the job row a task reports to: the one it was enqueued with, or a new one (task sent
    directly or by beat). One more attempt; the last attempt's error is cleared."""
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
    if task_for_job(job.kind) is None:
        raise ValueError(f"jobs of kind {job.kind!r} cannot be retried from here; retry the images instead")
    return job_enqueue(kind=job.kind, arguments=job.arguments, model_version=job.model_version)
