"""Training as jobs (workers.training_jobs): one run at a time, its heartbeat, its link to the version it
builds, and a run whose worker stopped marked interrupted (in process; the real worker's case is in
test_interrupted_training.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import ModelVersion
from recommender.versions import version_create
from workers.models import Job
from workers.training_jobs import INTERRUPTED, TrainingAlreadyQueued, interrupted_training_mark, training_enqueue

pytestmark = pytest.mark.django_db


def _running_train(*, heartbeat_age_s: float, version=None) -> Job:
    beat = timezone.now() - timedelta(seconds=heartbeat_age_s)
    return Job.objects.create(
        kind="train", status="running", started_at=beat, heartbeat_at=beat, model_version=version, attempts=1
    )


def test_a_training_run_without_a_heartbeat_is_marked_interrupted_with_its_version(settings, make_version):
    settings.WORKERS_TRAIN_STALE_S = 60
    active = make_version(activate=True)
    training = version_create(name="trained-lost", backbone="fake")
    lost = _running_train(heartbeat_age_s=61, version=training)
    alive = _running_train(heartbeat_age_s=5, version=version_create(name="trained-alive", backbone="fake"))
    old_reindex = Job.objects.create(
        kind="reindex", status="running", model_version=active, heartbeat_at=timezone.now() - timedelta(hours=1)
    )

    assert interrupted_training_mark() == [lost.pk]

    lost.refresh_from_db()
    training.refresh_from_db()
    assert (lost.status, lost.error) == ("failed", INTERRUPTED)
    assert lost.finished_at is not None
    assert (training.status, training.error) == ("failed", INTERRUPTED)
    assert INTERRUPTED.startswith("interrupted: the worker stopped during training")
    alive.refresh_from_db()
    assert alive.status == "running" and alive.model_version.status == "training"
    assert Job.objects.get(pk=old_reindex.pk).status == "running"  # the re-index resume's business
    active.refresh_from_db()
    assert active.status == "active"
    assert interrupted_training_mark() == []  # marked once


def test_an_interrupted_run_that_had_trained_is_failed_while_evaluating_but_an_active_version_never(
    settings, make_version
):
    settings.WORKERS_TRAIN_STALE_S = 60
    evaluating = make_version()
    ModelVersion.objects.filter(pk=evaluating.pk).update(status="evaluating")
    active = make_version(activate=True)
    first, second = (
        _running_train(heartbeat_age_s=120, version=evaluating),
        _running_train(heartbeat_age_s=120, version=active),
    )
    assert sorted(interrupted_training_mark()) == sorted([first.pk, second.pk])
    assert ModelVersion.objects.get(pk=evaluating.pk).status == "failed"
    assert ModelVersion.objects.get(pk=active.pk).status == "active"


def test_a_version_left_training_by_a_job_that_ended_is_failed_as_interrupted(settings):
    settings.WORKERS_TRAIN_STALE_S = 60
    orphan = version_create(name="trained-orphan", backbone="fake")
    Job.objects.create(kind="train", status="failed", model_version=orphan, error="SystemExit")
    going = version_create(name="trained-going", backbone="fake")
    _running_train(heartbeat_age_s=1, version=going)
    bootstrap = version_create(name="shipped-being-built", backbone="fake")  # no training job: not ours
    assert interrupted_training_mark() == []
    assert ModelVersion.objects.get(pk=orphan.pk).error == INTERRUPTED
    assert ModelVersion.objects.get(pk=orphan.pk).status == "failed"
    assert ModelVersion.objects.get(pk=going.pk).status == "training"
    assert ModelVersion.objects.get(pk=bootstrap.pk).status == "training"


def test_a_running_training_job_that_never_beat_counts_from_its_start(settings):
    settings.WORKERS_TRAIN_STALE_S = 60
    started = timezone.now() - timedelta(minutes=5)
    job = Job.objects.create(kind="train", status="running", started_at=started)
    queued = Job.objects.create(kind="train", status="queued")
    assert interrupted_training_mark() == [job.pk]
    assert Job.objects.get(pk=queued.pk).status == "queued"  # waiting for a worker is not interrupted


def test_retrain_queues_one_run_and_refuses_a_second_while_the_first_is_unfinished(
    settings, sent_tasks, django_capture_on_commit_callbacks
):
    settings.WORKERS_TRAIN_STALE_S = 60
    with django_capture_on_commit_callbacks(execute=True):
        first = training_enqueue()
    assert [name for name, _ in sent_tasks] == ["workers.train_version"]
    assert sent_tasks[0][1]["queue"] == "training"
    with pytest.raises(TrainingAlreadyQueued, match=rf"Training job #{first.pk} is already queued") as refused:
        training_enqueue()
    assert refused.value.job == first
    Job.objects.filter(pk=first.pk).update(status="running", heartbeat_at=timezone.now())
    with pytest.raises(TrainingAlreadyQueued, match="already running"):
        training_enqueue()
    assert Job.objects.filter(kind="train").count() == 1

    # Its worker stopped: the stale run no longer blocks a new one, and shows why it ended.
    Job.objects.filter(pk=first.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        second = training_enqueue()
    assert Job.objects.get(pk=first.pk).error == INTERRUPTED
    assert second.status == "queued" and len(sent_tasks) == 2


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has a connection of its own
def test_the_heartbeat_beats_while_the_run_goes_and_stops_with_it():
    from workers.training_jobs import training_heartbeat

    job = Job.objects.create(kind="train", status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    before = job.heartbeat_at
    with training_heartbeat(job, every_s=0.05):
        deadline = time.monotonic() + 10
        while Job.objects.get(pk=job.pk).heartbeat_at == before and time.monotonic() < deadline:
            time.sleep(0.05)
    last = Job.objects.get(pk=job.pk).heartbeat_at
    assert last > before
    time.sleep(0.3)
    assert Job.objects.get(pk=job.pk).heartbeat_at == last  # no beat once the run is over


@pytest.mark.django_db(transaction=True)
def test_the_job_links_to_its_version_as_soon_as_the_version_exists(make_version, make_colour_post, monkeypatch):
    """While ml.training.train runs, the job already names the version being trained."""
    from workers.versioning import train_evaluate_promote

    make_version(activate=True)
    for n in range(4):
        make_colour_post(n, n_items=1)
    monkeypatch.setattr("workers.training.is_heldout", lambda post_id, share: False)
    job = Job.objects.create(kind="train", status="running", started_at=timezone.now())
    seen = {}

    def progress(fraction, message):
        linked = Job.objects.get(pk=job.pk).model_version
        seen.setdefault("version", linked and (linked.pk, linked.status))

    result = train_evaluate_promote(job=job, progress=progress)
    assert seen["version"] == (result["version_id"], "training")
    assert Job.objects.get(pk=job.pk).model_version_id == result["version_id"]


def test_a_training_run_that_fails_fails_its_version_with_the_reason(make_version, make_colour_post, monkeypatch):
    from workers.versioning import train_evaluate_promote

    make_version(activate=True)
    for n in range(3):
        make_colour_post(n, n_items=1)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("tests.workers.fake_ml.training.train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        train_evaluate_promote()
    version = ModelVersion.objects.get(name__startswith="trained-")
    assert (version.status, version.error) == ("failed", "training failed: out of memory")


def test_the_sweep_marks_an_interrupted_training_run(settings, make_version, sent_tasks):
    from workers.tasks import embedding_sweep

    settings.WORKERS_TRAIN_STALE_S = 60
    make_version(activate=True)
    lost = _running_train(heartbeat_age_s=90)
    assert embedding_sweep.run()["interrupted"] == [lost.pk]
    assert Job.objects.get(pk=lost.pk).error == INTERRUPTED
    assert not [name for name, _ in sent_tasks if name == "workers.train_version"]  # never restarted
