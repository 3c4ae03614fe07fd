"""Settings for the test suite: the same stack, isolated from local data and from other test runs.

Each pytest process takes a free "slot" (a file lock held for its lifetime), so several test
runs on one machine never share a database, a broker database or a media folder:

- the database is pytest-django's throwaway ``test_lookbook`` (slot 0) or ``test_lookbook_<slot>``;
  a worker process started by a test inherits LOOKBOOK_TEST_SLOT and, with LOOKBOOK_USE_TEST_DB=1,
  connects to that database directly;
- the embedded Redis uses logical database 15 - slot, never 0 (the one `make run` uses);
- media files go to var/test-media[-<slot>].
"""

import os

from filelock import FileLock, Timeout

from config import devservices, env
from config.settings import *  # noqa: F403
from config.settings import DATABASES, VAR_DIR

_MAX_SLOTS = 8
_slot_lock: FileLock | None = None  # held until the process exits


def _claim_slot() -> int:
    global _slot_lock
    inherited = env.get("LOOKBOOK_TEST_SLOT")
    if inherited is not None:
        return int(inherited)
    lock_dir = VAR_DIR / "test-slots"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(_MAX_SLOTS):
        lock = FileLock(str(lock_dir / f"slot-{slot}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        _slot_lock = lock
        os.environ["LOOKBOOK_TEST_SLOT"] = str(slot)  # inherited by worker processes the tests start
        return slot
    raise RuntimeError(f"all {_MAX_SLOTS} test slots are busy (see {lock_dir})")


TEST_SLOT = _claim_slot()
_suffix = "" if TEST_SLOT == 0 else f"_{TEST_SLOT}"

DATABASES["default"]["TEST"]["NAME"] = env.get("TEST_DATABASE_NAME", f"test_lookbook{_suffix}")
if env.get_bool("LOOKBOOK_USE_TEST_DB", False):
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]

if devservices.embedded_broker():
    CELERY_BROKER_URL = devservices.redis_url(15 - TEST_SLOT)
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL

MEDIA_ROOT = VAR_DIR / f"test-media{_suffix.replace('_', '-')}"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ML_ARTIFACTS_DIR = VAR_DIR / f"test-models{_suffix.replace('_', '-')}"
