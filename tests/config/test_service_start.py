"""The embedded servers start in explicit places only: importing the settings or the Celery app starts
nothing; manage.py and the `celery` command run by hand start them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from config import devservices

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")


def _environment(var_dir: Path, **extra: str) -> dict[str, str]:
    dropped = {"DATABASE_URL", "CELERY_BROKER_URL", "LOOKBOOK_NO_DEVSERVICES", "LOOKBOOK_TEST_SLOT"}
    environment = {k: v for k, v in os.environ.items() if k not in dropped}
    return {**environment, "DJANGO_SETTINGS_MODULE": "config.settings", "LOOKBOOK_VAR_DIR": str(var_dir), **extra}


def _started(var_dir: Path) -> dict[str, bool]:
    paths = devservices.Paths(var_dir)
    postmasters = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(paths.pgdata) in " ".join(p.info["cmdline"] or [])
    ]
    return {
        "postmaster.pid": (paths.pgdata / "postmaster.pid").exists(),
        "postgres": bool(postmasters),
        "redis socket": paths.redis_socket.exists(),
    }


def _stop(var_dir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "config.devservices", "stop"],
        cwd=ROOT,
        env=_environment(var_dir),
        capture_output=True,
        timeout=120,
    )


IMPORTS = """
import sys
sys.argv[0] = {argv0!r}
import config.settings
import workers
import workers.celery
{then}
print("imported")
"""
# A plain process goes on to read the settings and the Celery app's configuration.
READ = """
import django
django.setup()
from django.conf import settings
print(settings.DATABASES["default"]["HOST"], workers.celery.app.conf.broker_url)
"""


@pytest.mark.parametrize(
    ("argv0", "then"),
    [("/usr/local/bin/celery", ""), ("-c", READ)],
    ids=["as the celery command", "read as well"],
)
def test_importing_the_settings_and_the_celery_app_starts_no_server(tmp_path, argv0, then):
    var_dir = tmp_path / "var"
    code = IMPORTS.format(argv0=argv0, then=then)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=_environment(var_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "imported" in done.stdout
        assert _started(var_dir) == {"postmaster.pid": False, "postgres": False, "redis socket": False}
    finally:
        _stop(var_dir)


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [[CELERY, "-A", "workers", "purge", "-f"], [sys.executable, "manage.py", "check"]],
    ids=["celery", "manage.py"],
)
def test_a_command_run_by_hand_starts_the_embedded_servers(tmp_path, command):
    var_dir = tmp_path / "var"
    try:
        done = subprocess.run(command, cwd=ROOT, env=_environment(var_dir), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert _started(var_dir) == {"postmaster.pid": True, "postgres": True, "redis socket": True}
    finally:
        _stop(var_dir)
    assert _started(var_dir) == {"postmaster.pid": False, "postgres": False, "redis socket": False}


def test_the_celery_command_starts_nothing_when_a_parent_owns_the_servers(tmp_path):
    var_dir = tmp_path / "var"
    try:
        done = subprocess.run(
            [CELERY, "-A", "workers", "report"],
            cwd=ROOT,
            env=_environment(var_dir, LOOKBOOK_NO_DEVSERVICES="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "CELERY_BROKER_URL" in done.stdout  # it did read its configuration
        assert _started(var_dir) == {"postmaster.pid": False, "postgres": False, "redis socket": False}
    finally:
        _stop(var_dir)
