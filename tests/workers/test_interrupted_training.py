"""A training worker stopped mid-run (`make run`'s Ctrl-C, or killed): its job and version
are marked interrupted when a worker starts again, nothing restarts on its own, and a new run can start.
Real worker processes on the real broker and database, the fake ml package's (slow) trainer."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from recommender.models import ModelVersion
from tests.workers.conftest import WORKER_ENV, wait_for
from workers.models import Job
from workers.training_jobs import INTERRUPTED, interrupted_training_mark, training_enqueue

pytestmark = pytest.mark.django_db(transaction=True)

STALE_S = 3.0
TRAINING_ENV = {**WORKER_ENV, "WORKERS_TRAIN_HEARTBEAT_S": "0.5", "WORKERS_TRAIN_STALE_S": str(STALE_S)}


@pytest.mark.parametrize("stop", ["kill", "stop"], ids=["SIGKILL", "SIGTERM to the group, as make run's Ctrl-C"])
def test_a_stopped_training_run_is_marked_interrupted_at_the_next_worker_start_and_can_start_again(
    settings, worker_factory, broker_clean, make_version, make_colour_post, stop
):
    settings.WORKERS_TRAIN_STALE_S = STALE_S
    make_version(activate=True)
    for n in range(4):
        make_colour_post(n, n_items=1)
    worker = worker_factory(
        queues="training", name="training", extra_env={**TRAINING_ENV, "FAKE_ML_TRAIN_SECONDS": "600"}
    )
    job = training_enqueue()

    # While it trains, the job names its version (still training) and its heartbeat goes on.
    running = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status="running", model_version__isnull=False).first(),
        timeout=60,
        message="the training job to run, linked to its version",
    )
    version = running.model_version
    assert version.status == "training"
    first_beat = running.heartbeat_at
    time.sleep(STALE_S + 1)
    assert Job.objects.get(pk=job.pk).heartbeat_at > first_beat
    assert interrupted_training_mark() == []  # alive: no progress for a while, but a heartbeat

    getattr(worker, stop)()  # the pool child dies with it (a warm shutdown would wait for the task)
    wait_for(
        lambda: (timezone.now() - Job.objects.get(pk=job.pk).heartbeat_at).total_seconds() > STALE_S + 0.5,
        timeout=30,
        message="the heartbeat to stop",
    )
    assert Job.objects.get(pk=job.pk).status == "running"  # nobody has looked yet

    # The next start (fast training now, as after a fix) marks the lost run; no check is run by hand.
    worker_factory(queues="training", name="training", extra_env={**TRAINING_ENV, "FAKE_ML_TRAIN_SECONDS": "0"})
    lost = wait_for(
        lambda: Job.objects.filter(pk=job.pk, status="failed").first(), timeout=30, message="the job marked"
    )
    assert lost.error == INTERRUPTED and lost.finished_at is not None
    version.refresh_from_db()
    assert (version.status, version.error) == ("failed", INTERRUPTED)
    time.sleep(2)
    assert Job.objects.filter(kind="train").count() == 1  # not restarted on its own

    # Started again (Retrain now): a new run, on the new worker, to the end.
    again = training_enqueue()
    done = wait_for(
        lambda: Job.objects.filter(pk=again.pk, status__in=["succeeded", "failed"]).first(),
        timeout=60,
        message="the new run to finish",
    )
    assert done.status == "succeeded", done.error
    assert done.model_version != version
    assert ModelVersion.objects.get(pk=done.model_version_id).status in ("ready", "active")
