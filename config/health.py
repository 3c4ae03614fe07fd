"""GET /healthz: database, broker, a worker answering a ping, and the active model version."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "the pgvector extension is not installed (run migrations)"}
    return {"ok": True, "pgvector": row[0]}


def _check_broker() -> dict:
    from workers.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"ok": True}


def _check_workers() -> dict:
    from workers.celery import app

    replies = app.control.ping(timeout=settings.HEALTH_WORKER_PING_TIMEOUT_S) or []
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return {"ok": False, "error": "no Celery worker answered a ping"}
    return {"ok": True, "workers": names}


def _check_model() -> dict:
    from recommender.models import ModelVersion

    active = ModelVersion.objects.active().first()
    if active is None:
        # Not a failure: a fresh install has no model until the first one is built.
        return {"ok": True, "active": None}
    return {"ok": True, "active": {"id": active.pk, "name": active.name, "backbone": active.backbone}}


CHECKS = {"database": _check_database, "broker": _check_broker, "workers": _check_workers, "model": _check_model}


@never_cache
@require_GET
def healthz(request):
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - any failure of a dependency is reported, not raised
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = result
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "ok" if not failing else "unhealthy", "failing": failing, "checks": results}
    return JsonResponse(body, status=200 if not failing else 503)
