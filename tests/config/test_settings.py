"""Production settings fail loudly without secrets and pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "x" * 20 + "K9#pLq2!vT7@wRz4$bN8&mJ5^hG3*fD6(sA1)" + "y" * 10


def run_manage(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    # Start from the real environment minus what each test sets (other tests' fixtures may have added some).
    dropped = {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "LOOKBOOK_NO_DEVSERVICES": "1", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_debug_off_without_secret_key_stops_with_a_clear_message():
    result = run_manage("check", DEBUG="0", ALLOWED_HOSTS="shop.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_off_without_allowed_hosts_stops_with_a_clear_message():
    result = run_manage("check", DEBUG="0", SECRET_KEY=GOOD_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set" in result.stderr


def test_invalid_boolean_is_reported_by_name():
    result = run_manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_check_deploy_is_clean_for_production_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", DEBUG="0", SECRET_KEY=GOOD_KEY, ALLOWED_HOSTS="shop.example.com"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_psycopg_prepared_statements_are_disabled():
    from django.conf import settings

    # Cached server-side plans would keep stale hnsw.* session settings (see config/settings/database.py).
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] is None


def test_settings_read_the_environment_only_through_config_env():
    modules = sorted((ROOT / "config" / "settings").glob("*.py"))
    assert len(modules) > 1, "the settings are a package of one module per concern"
    for path in modules:
        source = path.read_text()
        assert "os.environ" not in source and "getenv" not in source, path.name
