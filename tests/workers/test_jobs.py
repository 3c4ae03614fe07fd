"""The job workflow (workers.jobs.JobTask): the Job row of a task run, kept by the task's hooks.

Tasks run eagerly here (``apply``: the same tracer and hooks as in a worker, retries included);
the bodies are replaced where the work itself is beside the point.
"""

from __future__ import annotations

import pytest
from django.db import OperationalError

from workers.models import Job

pytestmark = pytest.mark.django_db


def _fake_reindex(monkeypatch, *, failures: int, error: BaseException):
    """``reindex_and_complete`` failing ``failures`` times with ``error``, then embedding 3 images;
    returns the job rows it saw, one per call."""
    seen = []

    def reindex_and_complete(version, *, progress=None):
        job = Job.objects.get()
        seen.append((job.status, job.attempts, job.error))
        if len(seen) <= failures:
            raise error
        return {"total": 3, "done": 3, "failed": 0}

    monkeypatch.setattr("workers.versioning.reindex_and_complete", reindex_and_complete)
    return seen


@pytest.fixture
def enqueue_reindex(sent_tasks, django_capture_on_commit_callbacks):
    """``enqueue_reindex(version_id)``: a re-index job as the admin queues it; returns the task's kwargs."""
    from workers.services import job_enqueue

    def enqueue(version_id: int) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            job_enqueue(kind="reindex", arguments={"version_id": version_id})
        return sent_tasks[-1][1]["kwargs"]

    return enqueue


def test_a_job_enqueued_by_a_service_is_run_and_marked_succeeded_with_the_task_message(
    make_version, sent_tasks, django_capture_on_commit_callbacks
):
    from workers.services import job_enqueue
    from workers.tasks import evaluate_version

    version = make_version()
    with django_capture_on_commit_callbacks(execute=True):
        job = job_enqueue(kind="evaluate", arguments={"version_id": version.pk}, model_version=version)
    ((name, options),) = sent_tasks
    assert (name, options["queue"]) == ("workers.evaluate_version", "training")

    result = evaluate_version.apply(kwargs=options["kwargs"])

    assert result.successful()
    job.refresh_from_db()
    assert Job.objects.count() == 1
    assert (job.status, job.attempts, job.error) == ("succeeded", 1, "")
    assert job.message == "no held-out posts to evaluate on" == result.result["decision"]
    assert job.celery_task_id == result.id and job.started_at and job.finished_at
    assert job.model_version == version


def test_a_task_sent_directly_records_a_new_job_with_its_arguments(settings, monkeypatch):
    from workers.tasks import model_bootstrap

    backbones = []

    def bootstrap_first_version(*, backbone, model, job=None, progress=None):
        backbones.append((backbone, model))
        assert job is not None and job.status == "running"
        return {"version_id": None, "message": "built it"}

    monkeypatch.setattr("workers.versioning.bootstrap_first_version", bootstrap_first_version)
    result = model_bootstrap.apply()

    job = Job.objects.get()
    assert result.result == {"version_id": None, "message": "built it"}
    assert (job.kind, job.status, job.message) == ("bootstrap", "succeeded", "built it")
    # the backbone and model left to the settings are recorded as the settings, so a retry builds the same
    assert job.arguments == {"backbone": settings.ML_BACKBONE, "model": settings.ML_BOOTSTRAP_MODEL}
    assert backbones == [(settings.ML_BACKBONE, settings.ML_BOOTSTRAP_MODEL)]


def test_a_transient_error_is_retried_by_celery_and_the_job_stays_running_meanwhile(
    make_version, monkeypatch, enqueue_reindex
):
    from workers.tasks import reindex_version

    version = make_version()
    seen = _fake_reindex(monkeypatch, failures=2, error=OperationalError("server closed the connection"))

    result = reindex_version.apply(kwargs=enqueue_reindex(version.pk))

    assert result.successful()
    assert seen == [("running", 1, ""), ("running", 2, ""), ("running", 3, "")]
    job = Job.objects.get()
    assert (job.kind, job.status, job.attempts) == ("reindex", "succeeded", 3)
    assert job.message == "3 images embedded, 0 failed"
    assert job.model_version == version


def test_when_celery_gives_up_retrying_the_job_fails_with_the_error(make_version, monkeypatch, enqueue_reindex):
    from workers.tasks import reindex_version

    version = make_version()
    seen = _fake_reindex(monkeypatch, failures=99, error=OperationalError("the database is gone"))

    result = reindex_version.apply(kwargs=enqueue_reindex(version.pk))

    assert result.failed()
    attempts = reindex_version.max_retries + 1
    assert len(seen) == attempts
    job = Job.objects.get()
    assert (job.status, job.attempts) == ("failed", attempts)
    assert "OperationalError: the database is gone" in job.error and job.finished_at is not None


def test_an_error_that_is_not_retried_fails_the_job_at_once(make_version, monkeypatch, enqueue_reindex):
    from workers.tasks import reindex_version

    version = make_version()
    seen = _fake_reindex(monkeypatch, failures=1, error=ValueError("not an image"))

    result = reindex_version.apply(kwargs=enqueue_reindex(version.pk))

    assert result.failed() and len(seen) == 1
    job = Job.objects.get()
    assert (job.status, job.attempts) == ("failed", 1)
    assert "ValueError: not an image" in job.error


def test_a_failed_job_stays_visible_and_is_retried_as_a_new_job(make_version, monkeypatch, enqueue_reindex):
    from workers.services import job_retry
    from workers.tasks import reindex_version

    version = make_version()
    _fake_reindex(monkeypatch, failures=1, error=ValueError("boom"))
    reindex_version.apply(kwargs=enqueue_reindex(version.pk))
    failed = Job.objects.get()

    retried = job_retry(job=failed)

    failed.refresh_from_db()
    assert failed.status == "failed" and "boom" in failed.error
    assert (retried.kind, retried.status, retried.arguments) == ("reindex", "queued", {"version_id": version.pk})


def test_a_transient_error_while_starting_the_job_is_retried_too(make_version, monkeypatch, enqueue_reindex):
    from workers import services
    from workers.tasks import reindex_version

    version = make_version()
    _fake_reindex(monkeypatch, failures=0, error=ValueError("unused"))
    real_start, calls = services.job_start, []

    def job_start(**kwargs):
        calls.append(kwargs["task_id"])
        if len(calls) == 1:
            raise OperationalError("connection refused")
        return real_start(**kwargs)

    monkeypatch.setattr(services, "job_start", job_start)
    result = reindex_version.apply(kwargs=enqueue_reindex(version.pk))

    assert result.successful() and len(calls) == 2
    job = Job.objects.get()
    assert (job.status, job.attempts) == ("succeeded", 1)


def test_a_missing_version_fails_the_task_and_leaves_its_job_as_it_was(enqueue_reindex):
    from recommender.models import ModelVersion
    from workers.tasks import reindex_version

    result = reindex_version.apply(kwargs=enqueue_reindex(999_999))
    job = Job.objects.get()

    assert result.failed() and isinstance(result.result, ModelVersion.DoesNotExist)
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error) == ("queued", 0, "")


def test_a_job_kind_without_a_task_cannot_be_enqueued_or_retried():
    from workers.services import job_enqueue, job_retry

    with pytest.raises(ValueError, match="no task runs jobs of kind 'embed'"):
        job_enqueue(kind="embed")
    with pytest.raises(ValueError, match="cannot be retried from here"):
        job_retry(job=Job.objects.create(kind="embed", status="failed"))
    assert Job.objects.count() == 1
