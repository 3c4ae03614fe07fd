"""Settings for the test suite: the same stack, isolated from local data.

- the database is pytest-django's throwaway ``test_lookbook`` (a worker process started by
  a test connects to it directly with LOOKBOOK_USE_TEST_DB=1);
- the embedded Redis uses its own logical database (15) so a running `make run` is not disturbed;
- media files go to var/test-media.
"""

from config import devservices, env
from config.settings import *  # noqa: F403
from config.settings import DATABASES, VAR_DIR

if env.get_bool("LOOKBOOK_USE_TEST_DB", False):
    DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]

if devservices.embedded_broker():
    CELERY_BROKER_URL = devservices.redis_url(env.get_int("LOOKBOOK_REDIS_DB", 15))
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL

MEDIA_ROOT = VAR_DIR / "test-media"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ML_ARTIFACTS_DIR = VAR_DIR / "test-models"
