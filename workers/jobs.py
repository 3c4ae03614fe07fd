"""The job workflow: a Celery task base class whose hooks keep the task's Job row.

A task declared ``@shared_task(base=JobTask, bind=True, name=registry.X.name, ...)`` finds its
Job row as ``self.job`` while it runs: marked running (attempt counted, error cleared) before
the body starts, succeeded with the task's message after it returns, failed with the traceback
when Celery gives up on it. Whether an error is retried is Celery's decision (``autoretry_for``,
``max_retries``); the hooks only record what Celery decided. Run these tasks through Celery
(``delay``, ``apply``, a worker): calling one directly skips the hooks.
"""

from __future__ import annotations

import inspect
import logging

from celery import Task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from workers import registry

logger = logging.getLogger(__name__)


def _transient_errors() -> tuple[type[BaseException], ...]:
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return OperationalError, InterfaceError, KombuOperationalError, RedisConnectionError, RedisTimeoutError


# Broker, backend and database errors that pass: worth a retry with backoff.
TRANSIENT_ERRORS = _transient_errors()
RETRY = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}


class JobTask(Task):
    """Keeps the Job row of each run. Options a task may set (as ``shared_task`` keyword arguments):

    - ``success_message``: a ``str.format`` template over the task's result (a dict) and ``version``
      (the job's model version), stored as the job's message when it succeeds.
    - ``setting_defaults``: {argument: setting name}; an argument left None is recorded on a new job
      as the setting's value, so the job re-enqueued later runs as this one did.
    """

    abstract = True
    success_message = ""
    setting_defaults: dict[str, str] = {}

    @property
    def job(self):
        """This run's Job row (the one it was enqueued with, or a new one when sent directly or by beat)."""
        return self.request.job

    def before_start(self, task_id, args, kwargs) -> None:
        from recommender.models import ModelVersion
        from workers.services import job_start

        arguments = self._job_arguments(args, kwargs)
        job_id = arguments.pop("job_id", None)
        kind = registry.task_named(self.name).job_kind
        try:
            # A missing version fails the task before its job is touched (the job stays as it was).
            version = ModelVersion.objects.get(pk=arguments["version_id"]) if "version_id" in arguments else None
            self.request.job = job_start(
                job_id=job_id, kind=kind, arguments=arguments, task_id=task_id, model_version=version
            )
        except tuple(self.autoretry_for or ()) as exc:
            # Celery's autoretry covers the body only: an error while starting is retried the same way.
            raise self.retry(exc=exc, countdown=self._autoretry_countdown()) from exc

    def on_success(self, retval, task_id, args, kwargs) -> None:
        from workers.services import job_succeed

        job = getattr(self.request, "job", None)
        if job is None:
            return
        message = self.success_message.format(**(retval or {}), version=job.model_version)
        try:
            job_succeed(job=job, message=message)
        except TRANSIENT_ERRORS:
            logger.warning("could not record the success of job %s", job.pk)

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        """A retried job stays running; its next attempt marks it running again (one more attempt)."""
        job = getattr(self.request, "job", None)
        if job is not None:
            logger.info("job %s will be retried after: %r", job.pk, exc)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Celery gave up: the job is failed with the traceback (visible, and retryable from the admin).

        No job here means it never started (or this is the worker's main process reporting a killed
        child, which has no job): nothing to record, as when the task never ran."""
        from workers.services import job_fail

        job = getattr(self.request, "job", None)
        if job is None:
            return
        try:
            job_fail(job=job, error=exc)
        except TRANSIENT_ERRORS:
            logger.warning("could not record the failure of job %s", job.pk)

    def _job_arguments(self, args, kwargs) -> dict:
        """The call's arguments by name, defaults included (a job re-enqueued with them runs the same)."""
        bound = inspect.signature(self.run).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        for name, setting in self.setting_defaults.items():
            if arguments.get(name) is None:
                arguments[name] = getattr(settings, setting)
        return arguments

    def _autoretry_countdown(self) -> float | None:
        """The delay Celery's autoretry would choose for this attempt (its backoff options)."""
        if not self.retry_backoff:
            return None
        return get_exponential_backoff_interval(
            factor=int(max(1.0, self.retry_backoff)),
            retries=self.request.retries,
            maximum=self.retry_backoff_max,
            full_jitter=self.retry_jitter,
        )
