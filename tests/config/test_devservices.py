"""The embedded services start idempotently, also when two processes race, and stop cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _devservices(var_dir: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    env = {**os.environ, "LOOKBOOK_VAR_DIR": str(var_dir), **extra_env}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "config.devservices", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _postmasters(var_dir: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(var_dir / "pgdata") in " ".join(p.info["cmdline"] or [])
    ]


def test_two_concurrent_starts_share_one_server_and_stop_cleanly(tmp_path):
    var_dir = tmp_path / "var"
    racers = [_devservices(var_dir, "start") for _ in range(2)]
    outputs = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    for stdout, _ in outputs:
        status = json.loads(stdout)
        assert status["postgres"]["running"] and status["redis"]["running"]
    assert len(_postmasters(var_dir)) == 1

    again = _devservices(var_dir, "start")
    again.communicate(timeout=60)
    assert again.returncode == 0
    assert len(_postmasters(var_dir)) == 1

    url = _devservices(var_dir, "url")
    stdout, _ = url.communicate(timeout=60)
    import psycopg

    pg_url, redis_url = stdout.split()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select current_database()").fetchone() == ("lookbook",)
    assert redis_url.startswith("redis+socket://")

    stop = _devservices(var_dir, "stop")
    stdout, _ = stop.communicate(timeout=60)
    assert json.loads(stdout) == {"postgres": True, "redis": True}
    assert _postmasters(var_dir) == []


def test_the_embedded_postgres_runs_with_the_configured_server_settings(tmp_path):
    """shared_buffers only applies at server start: a fresh server is restarted once to get it, and a
    running one is not restarted under its clients when the setting changes (it applies at the next start)."""
    import psycopg

    var_dir = tmp_path / "var"
    start = _devservices(var_dir, "start", LOOKBOOK_PG_SHARED_BUFFERS="160MB")
    assert start.wait(timeout=120) == 0, start.communicate()
    pg_url = _devservices(var_dir, "url").communicate(timeout=60)[0].split()[0]

    def shown() -> tuple[str, str]:
        with psycopg.connect(pg_url) as conn:
            names = ("shared_buffers", "maintenance_work_mem")
            return tuple(conn.execute(f"SHOW {name}").fetchone()[0] for name in names)

    try:
        assert shown() == ("160MB", "1GB")
        postmaster = _postmasters(var_dir)
        again = _devservices(var_dir, "start", LOOKBOOK_PG_SHARED_BUFFERS="176MB")
        _, stderr = again.communicate(timeout=60)
        assert again.returncode == 0
        assert "apply after" in stderr  # told, not restarted
        assert _postmasters(var_dir) == postmaster
        assert shown() == ("160MB", "1GB")
    finally:
        _devservices(var_dir, "stop").communicate(timeout=60)
    restart = _devservices(var_dir, "start", LOOKBOOK_PG_SHARED_BUFFERS="176MB")
    try:
        assert restart.wait(timeout=120) == 0
        assert shown()[0] == "176MB"
    finally:
        _devservices(var_dir, "stop").communicate(timeout=60)


@pytest.mark.parametrize(
    ("memory", "expected"),
    [(24 * 2**30, "6144MB"), (2 * 2**30, "1024MB"), (128 * 2**30, "8192MB"), (None, "1024MB")],
)
def test_shared_buffers_default_to_a_quarter_of_the_memory_within_bounds(monkeypatch, memory, expected):
    from config import devservices

    monkeypatch.delenv("LOOKBOOK_PG_SHARED_BUFFERS", raising=False)
    monkeypatch.setattr(devservices, "_memory_bytes", lambda: memory)
    assert devservices.default_shared_buffers() == expected
    assert devservices.server_settings()["shared_buffers"] == expected
