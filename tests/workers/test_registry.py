"""The task registry: every task's name, queue and job kind, and the routes settings take from it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from workers import registry


def _worker_tasks() -> dict:
    from workers.celery import app

    app.loader.import_default_modules()  # what a worker does at start: the tasks modules, autodiscovered
    return {name: task for name, task in app.tasks.items() if name.startswith("workers.")}


def test_every_worker_task_is_in_the_registry_and_every_registered_task_exists():
    assert set(_worker_tasks()) == {task.name for task in registry.TASKS}
    assert len({task.name for task in registry.TASKS}) == len(registry.TASKS)


def test_the_tasks_that_keep_a_job_row_are_the_job_tasks():
    from workers.jobs import JobTask

    job_tasks = {name for name, task in _worker_tasks().items() if isinstance(task, JobTask)}
    assert job_tasks == {task.name for task in registry.TASKS if task.job_kind}


def test_settings_routes_agree_with_the_registry():
    from django.conf import settings

    from workers.celery import app

    routes = registry.task_routes()
    assert settings.CELERY_TASK_ROUTES == routes
    # Tasks without a route of their own in settings land on the default queue, which must be theirs.
    for task in registry.TASKS:
        assert app.amqp.router.route({}, task.name)["queue"].name == task.queue, task.name
    assert {task.queue for task in registry.TASKS} == set(registry.QUEUES)
    # The queues that the web side names when it sends by name are the routes' too.
    assert settings.CATALOG_EMBEDDING_QUEUE == registry.EMBED_SNAPSHOTS.queue == registry.EMBED_ITEMS.queue
    assert settings.RECOMMENDER_QUERY_QUEUE == registry.EMBED_QUERY.queue


def test_task_routes_name_every_task_once():
    assert registry.task_routes()["workers.embed_query"] == {"queue": "queries"}
    assert registry.task_routes()["workers.reindex_version"] == {"queue": "embedding"}
    assert registry.task_routes()["workers.train_version"] == {"queue": "training"}
    assert registry.task_routes()["workers.style_graphs_ensure"] == {"queue": "default"}
    assert len(registry.task_routes()) == len(registry.TASKS)


def test_each_job_kind_with_a_task_maps_to_it_and_the_others_to_none():
    from workers.models import JobKind

    kinds = {task.job_kind for task in registry.TASKS if task.job_kind}
    assert kinds == set(JobKind.values) - {JobKind.EMBED}
    for kind in kinds:
        assert registry.task_for_job(kind).job_kind == kind
    assert registry.task_for_job(JobKind.REINDEX).name == "workers.reindex_version"
    assert registry.task_for_job(JobKind.EMBED) is None


def test_the_registry_imports_without_django_settings():
    code = (
        "from workers.registry import task_routes\n"
        "from django.conf import settings\n"
        "assert task_routes()\n"
        "print(settings.configured)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
