"""GET /healthz latency, before and after the background worker view: ``python -m bench.healthz [--calls 50]``.

On scratch embedded services (a temporary LOOKBOOK_VAR_DIR, deleted afterwards) with one real Celery
worker consuming every queue and an active model version row, it times in one run:

- before: what the old view did on each request, the same checks with the worker check as a
  synchronous ``control.ping`` broadcast (1 s reply timeout, the old HEALTH_WORKER_PING_TIMEOUT_S);
- after: ``GET /healthz`` through Django's test client (the whole view, middleware included), with
  the WSGI application loaded as a served process loads it: its first call, made at once (it waits
  for the rest of the process's first broadcast), then ``--calls`` more.

Prints p50 / p95 / max in milliseconds for each, the status codes and the reported view age.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_PING_TIMEOUT_S = 1.0


def _configure(var_dir: Path) -> None:
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "LOOKBOOK_NO_DEVSERVICES"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOOKBOOK_VAR_DIR": str(var_dir),
            "WORKERS_BOOTSTRAP_ON_START": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )


def _summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{name:<44} n={len(ms):<3} p50 {statistics.median(ms):8.1f} ms  p95 {p95:8.1f} ms  max {ms[-1]:8.1f} ms"


def _start_worker(queues: str) -> subprocess.Popen:
    from workers.celery import app

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues, "-n", "bench@healthz", "-c", "1"],
        cwd=ROOT,
        env={**os.environ, "LOOKBOOK_NO_DEVSERVICES": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if app.control.ping(destination=["bench@healthz"], timeout=0.5):
            return worker
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}")
    raise RuntimeError("the worker did not answer a ping within 120 s")


def _old_view_work() -> int:
    """The old /healthz's work for one request: the same database, broker and model checks, and a ping."""
    from config import health
    from workers.celery import app

    health._check_database()
    health._check_broker()
    replies = app.control.ping(timeout=OLD_PING_TIMEOUT_S) or []
    health._check_model()
    return 200 if replies else 503


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=50, help="timed calls of the new view (default 50)")
    parser.add_argument("--old-calls", type=int, default=10, help="timed runs of the old view's work (default 10)")
    args = parser.parse_args(argv)

    var_dir = Path(tempfile.mkdtemp(prefix="lookbook-bench-healthz-"))
    _configure(var_dir)
    from config import devservices

    worker = None
    try:
        devservices.ensure_started()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)
        import django

        django.setup()
        from django.test import Client

        from recommender.models import ModelVersion, ModelVersionStatus
        from workers import registry

        ModelVersion.objects.create(name="bench", backbone="efficientnet_lite0", status=ModelVersionStatus.ACTIVE)
        worker = _start_worker(",".join(registry.QUEUES))

        old, old_codes = [], []
        for _ in range(args.old_calls):
            started = time.monotonic()
            old_codes.append(_old_view_work())
            old.append(time.monotonic() - started)

        import config.wsgi  # noqa: F401 - loads the application as a served process does (starts the view)

        client = Client()
        started = time.monotonic()
        first = client.get("/healthz")
        first_s = time.monotonic() - started
        new, new_codes, ages = [], [], []
        for _ in range(args.calls):
            started = time.monotonic()
            response = client.get("/healthz")
            new.append(time.monotonic() - started)
            new_codes.append(response.status_code)
            ages.append(response.json()["checks"]["workers"].get("age_s"))
            time.sleep(0.1)  # spread over a few refreshes of the view

        print(_summary("before: per-request ping broadcast (1 s)", old), "codes", sorted(set(old_codes)))
        print(_summary("after: first call as the application loads", [first_s]), "code", first.status_code)
        print(_summary("after: GET /healthz (background view)", new), "codes", sorted(set(new_codes)))
        print(f"{'':<44} view age reported: {min(ages)} .. {max(ages)} s")
        return 0
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        devservices.stop_all(database=True, broker=True)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
