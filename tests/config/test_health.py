"""/healthz reports each dependency, a consumer on every queue and the active model, answers 503 naming the
failing part, and reads a worker view refreshed in the background instead of broadcasting per request."""

from __future__ import annotations

import time

import pytest

from config import health
from recommender.models import ModelVersion, ModelVersionStatus
from workers import registry

pytestmark = pytest.mark.django_db(transaction=True)

QUIET_WORKER = {"WORKERS_BOOTSTRAP_ON_START": "0"}  # no model build on start: the tests decide what is active


@pytest.fixture
def fresh_view(settings):
    """A worker view of this test only, refreshed every half second."""
    settings.HEALTH_WORKER_REPLY_TIMEOUT_S = 0.3
    settings.HEALTH_WORKER_REFRESH_S = 0.5
    health.worker_view.reset()
    yield health.worker_view
    health.worker_view.reset()


def _active_version() -> ModelVersion:
    return ModelVersion.objects.create(name="v-test", backbone="efficientnet_lite0", status=ModelVersionStatus.ACTIVE)


def _wait_for_health(client, predicate, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/healthz")
        body = response.json()
        if predicate(response.status_code, body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz never matched; last answer {response.status_code}: {body}")
        time.sleep(0.2)


def test_healthz_is_503_naming_workers_and_model_when_nothing_runs(client, celery_app_purged, fresh_view):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["failing"] == ["workers", "model"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["pgvector"].startswith("0.")
    assert body["checks"]["broker"]["ok"] is True
    workers = body["checks"]["workers"]
    assert workers["queues"] == {queue: [] for queue in registry.QUEUES}
    assert "no worker consumes" in body["reasons"]["workers"]
    for queue in registry.QUEUES:
        assert queue in body["reasons"]["workers"]
    assert body["checks"]["model"]["active"] is None
    assert "no model version is active" in body["reasons"]["model"]


@pytest.mark.worker
def test_every_queue_consumed_and_no_model_is_not_ready_then_ok_with_the_active_model(
    client, worker_factory, fresh_view
):
    worker_factory(queues=",".join(registry.QUEUES), name="everything", extra_env=QUIET_WORKER)
    body = _wait_for_health(client, lambda _status, b: b["checks"]["workers"].get("ok") is True)
    assert body["status"] == "not ready"
    assert body["failing"] == ["model"]
    assert "no model version is active" in body["reasons"]["model"]
    assert client.get("/healthz").status_code == 503

    version = _active_version()
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == [] and body["reasons"] == {}
    assert body["checks"]["workers"]["workers"] == ["everything@test"]
    assert body["checks"]["model"]["active"] == {"id": version.pk, "name": "v-test", "backbone": "efficientnet_lite0"}


@pytest.mark.worker
def test_the_queries_worker_gone_makes_healthz_503_naming_its_queue(client, worker_factory, fresh_view):
    _active_version()
    worker_factory(queues="default,embedding,training", name="main", extra_env=QUIET_WORKER)
    body = _wait_for_health(client, lambda _status, b: "main@test" in b["checks"]["workers"].get("workers", []))
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["queues"][registry.QUERIES] == []
    assert body["checks"]["workers"]["queues"][registry.EMBEDDING] == ["main@test"]
    assert body["reasons"]["workers"] == f"no worker consumes the queue(s): {registry.QUERIES}"

    queries = worker_factory(queues=registry.QUERIES, name="queries", extra_env=QUIET_WORKER)
    body = _wait_for_health(client, lambda status, _b: status == 200)
    assert body["checks"]["workers"]["queues"][registry.QUERIES] == ["queries@test"]

    queries.kill()  # SIGKILL: no goodbye to the broker, it just stops answering
    body = _wait_for_health(client, lambda status, _b: status == 503)
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["queues"][registry.QUERIES] == []


def test_a_request_reads_the_background_view_instead_of_waiting_for_a_broadcast(client, settings, fresh_view):
    # A broadcast waits its whole reply timeout: a request that broadcast itself would take >= 1.5 s.
    settings.HEALTH_WORKER_REPLY_TIMEOUT_S = 1.5
    settings.HEALTH_WORKER_REFRESH_S = 60
    client.get("/healthz")  # the process's first read waits for the first broadcast
    started = time.monotonic()
    body = client.get("/healthz").json()
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"/healthz took {elapsed:.2f} s"
    assert body["checks"]["workers"]["refresh_s"] == 60
    assert body["checks"]["workers"]["age_s"] >= 1.5  # the view was taken when the broadcast began


def test_a_stuck_refresher_fails_the_workers_check(client, settings, fresh_view, monkeypatch):
    settings.HEALTH_WORKER_REPLY_TIMEOUT_S = 0.1
    every_queue = {queue: ("w@test",) for queue in registry.QUEUES}
    monkeypatch.setattr(
        health,
        "queue_consumers",
        lambda timeout: health.QueueConsumers(taken_at=time.monotonic() - 100, consumers=every_queue),
    )
    body = client.get("/healthz").json()
    assert body["checks"]["workers"]["ok"] is False
    assert "100" in body["reasons"]["workers"] and "stuck" in body["reasons"]["workers"]


def test_healthz_is_503_naming_the_broker_when_it_is_unreachable(client, settings, monkeypatch, fresh_view):
    from workers.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert "broker" in body["failing"]
    assert body["checks"]["broker"]["error"]
    assert "could not ask the workers" in body["reasons"]["workers"]


def test_healthz_rejects_post(client):
    assert client.post("/healthz").status_code == 405
