"""The scratch environment: its own embedded PostgreSQL + Redis, media and model versions under var/bench/env.

The bench never touches the user's data: before Django is imported, the process environment
points LOOKBOOK_VAR_DIR at the scratch folder and drops DATABASE_URL / CELERY_BROKER_URL /
MEDIA_ROOT, so settings, ``manage.py`` subprocesses, the Celery worker and gunicorn all use the
scratch services. ``teardown`` stops those services and deletes the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.context import Context

# Settings the user may have pointed at real services or their own data: never inherited by the bench.
DROPPED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MEDIA_ROOT",
    "ML_ARTIFACTS_DIR",
    "LOOKBOOK_NO_DEVSERVICES",
    "TEST_DATABASE_NAME",
)


def configure(ctx: Context) -> None:
    """Point this process (and every child) at the scratch environment. Call before importing Django."""
    for name in DROPPED:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOOKBOOK_VAR_DIR": str(ctx.env_dir),
            "ML_ARTIFACTS_DIR": str(ctx.env_dir / "models"),
            "ML_CACHE_DIR": str(ctx.weights_cache),
            "WORKERS_BOOTSTRAP_ON_START": "0",  # the bench registers its own model version
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )


def _devservices(ctx: Context, command: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "config.devservices", command],
        cwd=ctx.root,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=180,
    )


def reset(ctx: Context) -> None:
    """Stop what a crashed earlier run may have left running, and start from an empty folder."""
    if ctx.env_dir.exists():
        try:
            _devservices(ctx, "stop")
        except (subprocess.SubprocessError, OSError) as exc:
            ctx.log(f"stopping leftover scratch services: {exc}")
        shutil.rmtree(ctx.env_dir, ignore_errors=True)
    ctx.env_dir.mkdir(parents=True, exist_ok=True)


def manage(ctx: Context, *args: str, timeout: float = 1800) -> str:
    """Run ``manage.py`` in the scratch environment; returns its output, raises with it on failure."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ctx.root, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    ctx.log(f"manage.py {' '.join(args)}: {time.monotonic() - started:.0f}s")
    return done.stdout


def setup_django(ctx: Context) -> None:
    """Start the scratch services, migrate, and set Django up in this process."""
    from config import devservices

    devservices.ensure_started(database=True, broker=True)
    manage(ctx, "migrate", "--noinput")
    import django

    django.setup()


def teardown(ctx: Context, *, keep: bool) -> None:
    if keep:
        ctx.log(
            f"scratch environment kept at {ctx.env_dir} (stop it: LOOKBOOK_VAR_DIR={ctx.env_dir} "
            f"{sys.executable} -m config.devservices stop)"
        )
        return
    try:
        _devservices(ctx, "stop")
    except (subprocess.SubprocessError, OSError) as exc:
        ctx.log(f"stopping the scratch services failed: {exc}")
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    ctx.log(f"scratch environment removed ({ctx.work_dir})")


class Process:
    """A child process in its own session (so the whole group can be ended), output to a log file."""

    def __init__(self, name: str, args: list[str], *, cwd: Path, log_dir: Path, env: dict | None = None):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> None:
        import signal

        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
            except ProcessLookupError:
                pass
        self._log.close()
