"""Upload queries while Redis (broker and result store) is down: a quick 503, and service again without a
restart once it is back. The suite's shared Redis is left alone: these tests stop a server of their own."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

import pytest

from tests import factories as f
from tests.recommender.fake_embed_worker import FAKE_TASK_NAME
from tests.spare_redis import SpareRedis, celery_pointed_at
from tests.workers.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# The bound is 2 s (docs/reliability.md measures it); the assertion leaves room for a slow machine.
QUICK_S = 5.0


@pytest.fixture
def point_celery_at(worker_factory):
    """``point_celery_at(url)``: this process's Celery app, and the workers started after it, use ``url`` as
    broker and result store; restored at teardown, before the workers stop."""
    with ExitStack() as stack:
        yield lambda url: stack.enter_context(celery_pointed_at(url))


@pytest.fixture
def spare_redis():
    server = SpareRedis().start()
    yield server
    server.remove()


def _upload_api(client):
    return client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload("me.jpg")})


def _upload_page(client):
    return client.post("/search/", {"direction": "item_to_snapshots", "image": f.make_upload("bag.jpg")})


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_quick_503(response, seconds: float, *, api: bool) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"].isdigit()
    assert seconds < QUICK_S, f"took {seconds:.1f}s"
    if api:
        assert response["Content-Type"].startswith("application/json")
        assert "unavailable" in response.json()["message"]
    else:
        assert response["Content-Type"].startswith("text/html")
        assert "try again" in response.content.decode().lower()


def test_uploads_are_a_quick_503_while_redis_is_down_and_answered_again_once_it_is_back(
    client, reco_catalog, worker_factory, point_celery_at, spare_redis, settings
):
    settings.RECOMMENDER_QUERY_TASK = FAKE_TASK_NAME
    point_celery_at(spare_redis.url())
    worker_factory(
        queues="queries",
        name="reco-outage",
        extra_env={"DJANGO_SETTINGS_MODULE": "tests.recommender.worker_settings"},
    )
    assert _upload_api(client).status_code == 200

    spare_redis.stop()
    for call, api in ((_upload_api, True), (_upload_page, False), (_upload_api, True)):
        response, seconds = _timed(lambda call=call: call(client))
        _assert_quick_503(response, seconds, api=api)

    spare_redis.start()  # the same socket; neither this process nor the worker is restarted
    wait_for(
        lambda: _upload_api(client).status_code == 200, timeout=60, message="an upload answered after Redis returned"
    )
    assert _upload_page(client).status_code == 200


def test_a_broker_port_where_nothing_listens_is_a_quick_503(client, reco_catalog, point_celery_at):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    point_celery_at(f"redis://127.0.0.1:{port}/0")

    for call, api in ((_upload_api, True), (_upload_page, False)):
        response, seconds = _timed(lambda call=call: call(client))
        _assert_quick_503(response, seconds, api=api)


def test_a_broker_that_accepts_but_never_answers_is_a_503_within_2_s(client, reco_catalog, point_celery_at):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes each handshake; nothing ever reads or replies
        point_celery_at(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        timings = []
        for call, api in ((_upload_api, True), (_upload_page, False)):
            response, seconds = _timed(lambda call=call: call(client))
            timings.append(seconds)
            _assert_quick_503(response, seconds, api=api)
    print("silent broker: " + ", ".join(f"{s:.2f}s" for s in timings))
    # two waits of CELERY_REDIS_SOCKET_TIMEOUT_S (0.5 s): subscribing to the result, and its one reconnect
    assert max(timings) < 2.0


def test_a_worker_waits_longer_on_redis_than_a_process_that_sends_tasks(worker_factory, settings):
    from workers.celery import app

    worker = worker_factory(queues="default", name="redis-waits")
    (conf,) = app.control.inspect(destination=[worker.hostname], timeout=2).conf(with_defaults=True).values()

    assert app.conf.redis_socket_timeout == app.conf.broker_transport_options["socket_timeout"] == 0.5
    assert conf["redis_socket_timeout"] == settings.WORKERS_REDIS_SOCKET_TIMEOUT_S == 2.0
    assert conf["redis_socket_connect_timeout"] == conf["broker_connection_timeout"] == 1.0
    transport = conf["broker_transport_options"]
    assert (transport["socket_timeout"], transport["socket_connect_timeout"]) == (2.0, 1.0)
    assert transport["priority_steps"] == app.conf.broker_transport_options["priority_steps"]  # the rest kept
    assert conf["result_backend_transport_options"]["retry_policy"]["max_retries"] == 1
