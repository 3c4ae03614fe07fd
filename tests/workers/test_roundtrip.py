"""A task round trip through the real broker to a real worker process."""

import os

import pytest

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_echo_task_runs_in_a_separate_worker_process(worker_factory):
    from workers.tasks import echo

    worker = worker_factory(queues="default", name="roundtrip")
    result = echo.apply_async(args=[{"hello": "world", "n": 3}], queue="default")
    body = result.get(timeout=30)

    assert body["payload"] == {"hello": "world", "n": 3}
    assert body["pid"] != os.getpid()
    assert result.status == "SUCCESS"
    assert worker.proc.poll() is None
