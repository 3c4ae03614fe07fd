"""/healthz reports each dependency and answers 503 naming the failing part."""

import pytest

from recommender.models import ModelVersion, ModelVersionStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_healthz_is_503_naming_workers_when_none_answers(client, celery_app_purged, settings):
    settings.HEALTH_WORKER_PING_TIMEOUT_S = 0.3
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["workers"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["pgvector"].startswith("0.")
    assert body["checks"]["broker"]["ok"] is True
    assert body["checks"]["model"] == {"ok": True, "active": None, "ms": body["checks"]["model"]["ms"]}


@pytest.mark.worker
def test_healthz_is_200_with_a_worker_and_reports_the_active_model(client, worker_factory):
    worker_factory(queues="default", name="health")
    version = ModelVersion.objects.create(
        name="v-test", backbone="efficientnet_lite0", status=ModelVersionStatus.ACTIVE
    )
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert "health@test" in body["checks"]["workers"]["workers"]
    assert body["checks"]["model"]["active"] == {"id": version.pk, "name": "v-test", "backbone": "efficientnet_lite0"}


def test_healthz_is_503_naming_the_broker_when_it_is_unreachable(client, settings, monkeypatch):
    from workers.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert "broker" in body["failing"]
    assert body["checks"]["broker"]["error"]


def test_healthz_rejects_post(client):
    assert client.post("/healthz").status_code == 405
