"""Delivery after a worker dies: which tasks acknowledge late, and how soon their messages come back.

Redis gives a delivered, unacknowledged message back to the queue once it is older than the visibility
timeout. A late-acknowledged task still running then would run twice at once, so only tasks whose hard
time limit ends before the timeout may acknowledge late; the others acknowledge on start.
"""

from __future__ import annotations

import os

from django.conf import settings

from workers import registry


def _worker_tasks() -> dict:
    from workers.celery import app

    app.loader.import_default_modules()  # what a worker does at start
    return {task.name: app.tasks[task.name] for task in registry.TASKS}


def _transport() -> dict:
    from workers.celery import app

    return app.conf.broker_transport_options


def test_a_late_acknowledged_task_ends_before_its_message_could_be_given_back():
    visibility = _transport()["visibility_timeout"]
    late = {name: task for name, task in _worker_tasks().items() if task.acks_late}
    assert late, "the embedding batches acknowledge late (a batch lost with its worker is redelivered)"
    for name, task in late.items():
        assert task.time_limit is not None, f"{name} acknowledges late without a hard time limit"
        assert task.time_limit < visibility, f"{name} may still run when its message is given back"
        assert task.reject_on_worker_lost, f"{name}: a killed pool process should requeue its message at once"


def test_the_embedding_batches_acknowledge_late_and_the_long_jobs_on_start():
    tasks = _worker_tasks()
    assert tasks[registry.EMBED_SNAPSHOTS.name].acks_late
    assert tasks[registry.EMBED_ITEMS.name].acks_late
    for spec in (
        registry.REINDEX_VERSION,
        registry.ACTIVATE_VERSION,
        registry.MODEL_BOOTSTRAP,
        registry.TRAIN_VERSION,
        registry.EVALUATE_VERSION,
    ):
        assert not tasks[spec.name].acks_late, f"{spec.name} may run for hours: it acknowledges on start"


def test_a_dead_workers_messages_come_back_within_minutes_by_default():
    # The defaults the settings ship with (the suite's environment overrides none of them).
    assert not {"CELERY_VISIBILITY_TIMEOUT", "CELERY_UNACKED_RESTORE_INTERVAL"} & set(os.environ)
    options = _transport()
    scan_every = options["unacked_restore_interval"] * options["unacked_restore_throttle"]
    worst_case = options["visibility_timeout"] + scan_every
    assert worst_case <= 15 * 60, f"a killed worker's messages come back after up to {worst_case} s"
    assert options["visibility_timeout"] == settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
