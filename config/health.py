"""GET /healthz: the database, the broker, a consumer on every queue, and an active model version.

200 when everything is up; 503 otherwise, with ``status`` "not ready" when only the model is missing
(a fresh install builds its first version) and "unhealthy" when a dependency fails, ``failing``
naming the checks and ``reasons`` saying why.

Which worker consumes which queue comes from Celery's ``inspect active_queues`` broadcast, which
waits for its whole reply timeout. A request must not pay that, so each process keeps a
:class:`WorkerView` refreshed by a background thread every ``HEALTH_WORKER_REFRESH_S`` seconds;
the check reads its last result and reports its age (``age_s``). A view older than
``HEALTH_WORKER_MAX_AGE_S`` (the refresher is stuck) fails the check.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from workers import registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueConsumers:
    """One broadcast's answer: the workers consuming each queue, or the error that stopped it."""

    taken_at: float  # time.monotonic() when the broadcast was sent
    consumers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    error: str | None = None

    @property
    def workers(self) -> list[str]:
        return sorted({name for names in self.consumers.values() for name in names})


def queue_consumers(timeout: float) -> QueueConsumers:
    """Ask every worker which queues it consumes (waits ``timeout`` seconds for replies)."""
    from workers.celery import app

    started = time.monotonic()
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            replies = app.control.inspect(connection=conn, timeout=timeout).active_queues() or {}
    except Exception as exc:  # noqa: BLE001 - a broker failure is reported, not raised
        return QueueConsumers(taken_at=started, error=f"{type(exc).__name__}: {exc}")
    consumers: dict[str, list[str]] = {}
    for worker, queues in replies.items():
        for queue in queues or []:
            consumers.setdefault(queue["name"], []).append(worker)
    return QueueConsumers(taken_at=started, consumers={q: tuple(sorted(w)) for q, w in consumers.items()})


class WorkerView:
    """The last :func:`queue_consumers` answer of this process, refreshed in a daemon thread.

    The thread starts when the WSGI application loads (:meth:`start`) or with the first read, in the
    process that reads (a gunicorn worker forked after a preload gets its own). A read before the
    first broadcast has come back waits for it, at most one reply timeout; later reads never wait.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._latest: QueueConsumers | None = None
        self._pid: int | None = None
        self._generation = 0

    def start(self) -> None:
        """Start the refresher in this process, if it is not running here yet (config.wsgi calls this,
        so a served process has its view before the first probe)."""
        self._ensure_thread()

    def latest(self) -> QueueConsumers | None:
        self._ensure_thread()
        self._first.wait(settings.HEALTH_WORKER_REPLY_TIMEOUT_S + 3)
        return self._latest

    def reset(self) -> None:
        """Forget the view and stop the refresher (the next read starts a fresh one)."""
        with self._lock:
            self._generation += 1
            self._pid = None
            self._latest = None
            self._first = threading.Event()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            generation = self._generation
        threading.Thread(target=self._refresh_forever, args=(generation,), name="healthz-workers", daemon=True).start()

    def _refresh_forever(self, generation: int) -> None:
        first = self._first
        while generation == self._generation:
            answer = queue_consumers(settings.HEALTH_WORKER_REPLY_TIMEOUT_S)
            with self._lock:
                if generation != self._generation:
                    return
                self._latest = answer
            first.set()
            time.sleep(settings.HEALTH_WORKER_REFRESH_S)


worker_view = WorkerView()


def _check_workers() -> dict:
    view = worker_view.latest()
    if view is None:
        return {"ok": False, "error": "no view of the workers yet (the first broadcast has not come back)"}
    age = round(time.monotonic() - view.taken_at, 1)
    result: dict = {"age_s": age, "refresh_s": settings.HEALTH_WORKER_REFRESH_S}
    if view.error:
        return {**result, "ok": False, "error": f"could not ask the workers: {view.error}"}
    queues = {queue: list(view.consumers.get(queue, ())) for queue in registry.QUEUES}
    result.update(queues=queues, workers=view.workers)
    missing = [queue for queue, workers in queues.items() if not workers]
    if missing:
        return {**result, "ok": False, "error": f"no worker consumes the queue(s): {', '.join(missing)}"}
    if age > settings.HEALTH_WORKER_MAX_AGE_S:
        return {**result, "ok": False, "error": f"the worker view is {age} s old (its refresher is stuck)"}
    return {**result, "ok": True}


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


def _check_model() -> dict:
    from recommender.models import ModelVersion
    from workers.models import Job, JobKind

    active = ModelVersion.objects.active().first()
    if active is not None:
        return {"ok": True, "active": {"id": active.pk, "name": active.name, "backbone": active.backbone}}
    if Job.objects.unfinished().filter(kind__in=[JobKind.BOOTSTRAP, JobKind.ACTIVATE]).exists():
        error = "no model version is active yet; the first one is being built (see the jobs in the admin)"
    else:
        error = "no model version is active; build one (manage.py model_bootstrap) or activate one in the admin"
    return {"ok": False, "active": None, "error": error}


CHECKS = {"database": _check_database, "broker": _check_broker, "workers": _check_workers, "model": _check_model}
# Failing alone, these make the site "not ready" rather than "unhealthy": it is up, but cannot answer yet.
READINESS_ONLY = {"model"}


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
    if not failing:
        status = "ok"
    elif set(failing) <= READINESS_ONLY:
        status = "not ready"
    else:
        status = "unhealthy"
    body = {
        "status": status,
        "failing": failing,
        "reasons": {name: results[name]["error"] for name in failing},
        "checks": results,
    }
    return JsonResponse(body, status=200 if not failing else 503)
