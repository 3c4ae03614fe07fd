"""Lookbook settings, one module per concern; all environment access goes through config.env.

Local default: DEBUG on, embedded PostgreSQL + Redis under var/ (config.devservices, which
starts them in explicit places; importing these settings starts nothing). Production (DEBUG=0):
SECRET_KEY and ALLOWED_HOSTS are required; DATABASE_URL and CELERY_BROKER_URL point at real
servers (docker-compose.yml). Tests: config.settings_test.
"""

from config.settings.base import *  # noqa: F403
from config.settings.catalog import *  # noqa: F403
from config.settings.celery import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.health import *  # noqa: F403
from config.settings.ml import *  # noqa: F403
from config.settings.recommender import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.workers import *  # noqa: F403
