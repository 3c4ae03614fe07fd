"""Project-wide fixtures: embedded services, media isolation, and real Celery worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import devservices

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("LOOKBOOK_DATASETS", ROOT.parent / "shared" / "datasets")).resolve()


def pytest_configure(config):
    # Before pytest-django creates the test database, the embedded servers must be up.
    devservices.ensure_started()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared datasets (../shared/datasets, or LOOKBOOK_DATASETS). Tests that need them fail without them."""
    if not (DATASETS / "ccp").is_dir():
        pytest.fail(f"The shared datasets are missing at {DATASETS}; set LOOKBOOK_DATASETS")
    return DATASETS


def _worker_log_dir() -> Path:
    """Worker logs of this test run (per test slot, emptied at session start; a restarted worker appends)."""
    from django.conf import settings

    return ROOT / "var" / "test-logs" / f"slot-{settings.TEST_SLOT}"


@pytest.fixture(autouse=True, scope="session")
def _clean_test_media():
    from django.conf import settings

    shutil.rmtree(_worker_log_dir(), ignore_errors=True)
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    yield


@pytest.fixture(autouse=True)
def _probe_helpers_closed():
    """The selectors' helper connections (recommender.selectors.fanout), opened by searches outside a
    transaction (live-server and transactional tests), are closed after each test: an open one would
    keep the test database from being dropped at the end."""
    yield
    from recommender.selectors.similarity.fanout import close_helpers

    close_helpers()


@pytest.fixture
def celery_app_purged():
    """The Celery app with the test broker's queues emptied (before and after)."""
    from workers.celery import app

    app.control.purge()
    yield app
    app.control.purge()


class WorkerProcess:
    """A real `celery worker` process, on the test database and the test broker."""

    def __init__(self, *, queues: str, name: str, concurrency: int = 1, extra_env: dict | None = None):
        self.queues = queues
        self.name = name
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = _worker_log_dir() / f"{name}.log"

    @property
    def hostname(self) -> str:
        return f"{self.name}@test"

    def start(self, timeout: float = 90) -> WorkerProcess:
        from workers.celery import app

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "LOOKBOOK_USE_TEST_DB": "1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                self.queues,
                "-n",
                self.hostname,
                "-c",
                str(self.concurrency),
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")
            replies = app.control.ping(destination=[self.hostname], timeout=0.5) or []
            if replies:
                return self
        self.stop()
        raise RuntimeError(f"worker did not answer a ping within {timeout}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the whole process group (the main process and its pool children)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()


@pytest.fixture
def worker_factory(celery_app_purged) -> Iterator:
    """Start real worker processes: ``worker_factory(queues="default", name="w1")``; all stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(*, queues: str = "default", name: str = "worker", **kwargs) -> WorkerProcess:
        worker = WorkerProcess(queues=queues, name=name, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
