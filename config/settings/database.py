"""The database: the embedded PostgreSQL (config.devservices) unless DATABASE_URL names a real one.

Reading these settings starts no server: the embedded one is started by config.run, manage.py,
the celery command and the test suite (config.devservices.start_for_command).
"""

import dj_database_url

from config import devservices, env

if devservices.embedded_database():
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": devservices.DATABASE_NAME,
            "USER": "postgres",
            # The running server's socket directory (its data folder until it runs).
            "HOST": devservices.postgres_host(),
            "CONN_MAX_AGE": 0,
        }
    }
else:
    DATABASES = {"default": dj_database_url.parse(env.require("DATABASE_URL", "database URL"), conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# psycopg 3 would prepare a statement after 5 executions; a prepared plan can outlive the
# session settings (hnsw.ef_search, hnsw.iterative_scan) the recommender sets per query.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
# A connection attempt gives up after this many seconds (libpq's minimum is 2; a DATABASE_URL's own
# ?connect_timeout= wins), so a stopped or unreachable server is a quick 503 (config.outages), not a hang.
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.get_int("DATABASE_CONNECT_TIMEOUT_S", 2))
DATABASES["default"]["TEST"] = {"NAME": env.get("TEST_DATABASE_NAME", "test_lookbook")}
