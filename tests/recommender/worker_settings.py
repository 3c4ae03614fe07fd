"""Settings for the test-only query worker: the test settings plus the stand-in embed_query task."""

from config.settings_test import *  # noqa: F403

CELERY_IMPORTS = ["tests.recommender.fake_embed_worker"]
