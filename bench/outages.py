"""How fast the web side gives up on a dead Redis or PostgreSQL: ``python -m bench.outages``.

Each case runs in a fresh process (nothing cached between them), once with the library defaults the
project ran with before (Celery/kombu/redis-py's own timeouts and retries; no connect_timeout; no 503
middleware) and once with the project's settings, against three kinds of dead server:

- ``missing``: nothing at the address (a stopped embedded server: its Unix socket is gone);
- ``refused``: a TCP port where nothing listens;
- ``silent``: a TCP port that accepts connections and never answers (a hung server, a partition).

Redis: the time for an upload's query to fail, from sending the task (``send_task``, then the wait,
as ``recommender.uploads.query_vectors_request`` does). PostgreSQL: the status and time of ``GET /``
through Django's test client. A case still waiting after ``--limit`` seconds is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Celery's and kombu's defaults for what config.settings.celery now bounds (celery/app/defaults.py).
CELERY_DEFAULTS = {
    "broker_connection_timeout": 4.0,
    "broker_transport_options": {},
    "redis_socket_timeout": 120.0,
    "redis_socket_connect_timeout": None,
    "result_backend_transport_options": {},
    "task_publish_retry_policy": {"max_retries": 3, "interval_start": 0, "interval_max": 1, "interval_step": 0.2},
}


def _redis_case(before: bool) -> dict:
    import django

    django.setup()
    from catalog.validators import validate_image_upload
    from recommender.uploads import query_vectors_request
    from workers.celery import app

    image = validate_image_upload(_tiny_jpeg(), name="q.jpg")
    started = time.monotonic()
    if before:
        for key, value in CELERY_DEFAULTS.items():
            app.conf[key] = value
        try:  # the code before: send_task outside any error handling, so its exception was a 500
            app.send_task("workers.embed_query", args=["", "item"], queue="queries", expires=20).get(timeout=20)
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001 - reported
            outcome = f"{type(exc).__name__} (a 500)"
    else:
        try:
            query_vectors_request(image=image, kind="item", timeout=20)
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001 - reported
            outcome = f"{type(exc).__name__} (a 503)"
    return {"seconds": time.monotonic() - started, "outcome": outcome}


def _database_case(before: bool) -> dict:
    import django
    from django.conf import settings

    django.setup()
    from django.test import Client

    if before:
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "config.outages.DatabaseUnavailableMiddleware"]
        settings.DATABASES["default"]["OPTIONS"].pop("connect_timeout", None)
    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client(raise_request_exception=False)
    started = time.monotonic()
    response = client.get("/")
    return {"seconds": time.monotonic() - started, "outcome": f"{response.status_code}"}


def _tiny_jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(out, format="JPEG")
    return out.getvalue()


class DeadServer:
    """An address where the service is down in one of the three ways above."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.sock: socket.socket | None = None
        if kind == "missing":
            self.host, self.port = str(folder / "gone"), 0
            return
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.host, self.port = self.sock.getsockname()
        if kind == "refused":
            self.sock.close()
            self.sock = None
        else:
            self.sock.listen(64)  # the kernel completes each handshake; nothing ever reads

    def redis_url(self) -> str:
        if self.kind == "missing":
            return f"redis+socket://{self.host}/redis.sock"
        return f"redis://127.0.0.1:{self.port}/0"

    def database_url(self) -> str:
        if self.kind == "missing":
            return f"postgres://postgres@/lookbook?host={self.host}"
        return f"postgres://postgres@127.0.0.1:{self.port}/lookbook"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _run_case(service: str, kind: str, before: bool, limit: float, folder: Path) -> dict:
    dead = DeadServer(kind, folder)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "CRITICAL"}
    if service == "redis":
        env["CELERY_BROKER_URL"] = env["CELERY_RESULT_BACKEND"] = dead.redis_url()
    else:
        env["DATABASE_URL"] = dead.database_url()
        env["CELERY_BROKER_URL"] = "redis://127.0.0.1:1/0"  # never used; keeps the embedded Redis out of it
    command = [sys.executable, "-m", "bench.outages", "--case", service, "--before" if before else "--after"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        result = (
            json.loads(lines[-1]) if lines else {"seconds": time.monotonic() - started, "outcome": done.stderr[-200:]}
        )
    except subprocess.TimeoutExpired:
        result = {"seconds": limit, "outcome": f"still waiting after {limit:.0f} s (stopped)"}
    finally:
        dead.close()
    return result


def _before_and_after(service: str, kind: str, limit: float, folder: Path) -> tuple[dict, dict]:
    """Both runs of one case at once (each in its own process, against its own dead server)."""
    results: dict[bool, dict] = {}

    def run(before: bool) -> None:
        results[before] = _run_case(service, kind, before, limit, folder)

    threads = [threading.Thread(target=run, args=(before,)) for before in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results[True], results[False]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds before a case is stopped")
    parser.add_argument("--case", choices=["redis", "database"], help=argparse.SUPPRESS)
    parser.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--after", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        sys.path.insert(0, str(ROOT))
        case = _redis_case if args.case == "redis" else _database_case
        print(json.dumps(case(before=args.before)))
        return 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="outages-") as folder:
        for service in ("redis", "database"):
            for kind in ("missing", "refused", "silent"):
                rows.append((service, kind, *_before_and_after(service, kind, args.limit, Path(folder))))
    print(f"{'service':<9} {'dead server':<12} {'before: s':>10}  {'outcome':<40} {'after: s':>9}  outcome")
    for service, kind, before, after in rows:
        print(
            f"{service:<9} {kind:<12} {before['seconds']:>10.2f}  {before['outcome']:<40}"
            f" {after['seconds']:>9.2f}  {after['outcome']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
