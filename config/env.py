"""The one place that reads the process environment.

Every setting has a safe default for the local embedded setup; secrets in
production (DEBUG off) fail loudly when missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def get(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def get_bool(name: str, default: bool) -> bool:
    value = get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def get_int(name: str, default: int) -> int:
    return _parsed(name, default, int, "an integer")


def get_float(name: str, default: float) -> float:
    return _parsed(name, default, float, "a number")


def _parsed(name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    value = get(name)
    if value is None:
        return default
    try:
        return parse(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not {what}") from exc


def get_list(name: str, default: list[str]) -> list[str]:
    value = get(name)
    if value is None:
        return list(default)
    return [part.strip() for part in value.split(",") if part.strip()]


def require(name: str, why: str) -> str:
    value = get(name)
    if value is None:
        raise ImproperlyConfigured(f"The environment variable {name} must be set: {why}")
    return value


def var_dir() -> Path:
    """Folder for local state (embedded database, broker, media, model artifacts)."""
    return Path(get("LOOKBOOK_VAR_DIR", str(BASE_DIR / "var"))).resolve()
