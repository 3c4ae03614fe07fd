"""Lookbook settings. All environment access goes through config.env.

Local default: DEBUG on, embedded PostgreSQL + Redis under var/ (see config.devservices).
Production (DEBUG=0): SECRET_KEY and ALLOWED_HOSTS are required; DATABASE_URL and
CELERY_BROKER_URL point at real servers (docker-compose.yml).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import devservices, env

BASE_DIR = env.BASE_DIR
VAR_DIR = env.var_dir()

DEBUG = env.get_bool("DEBUG", True)

if DEBUG:
    SECRET_KEY = env.get("SECRET_KEY", "django-insecure-local-development-only-key-change-me-0123456789")
    ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
else:
    SECRET_KEY = env.require("SECRET_KEY", "DEBUG is off, so a real secret key is needed (50+ random characters).")
    ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "The environment variable ALLOWED_HOSTS must be set: DEBUG is off, so list the host names "
            "this site is served under, comma-separated (e.g. ALLOWED_HOSTS=shop.example.com)."
        )

CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "catalog",
    "recommender",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if not DEBUG:
    # Production serves collected static files itself (gunicorn + WhiteNoise); runserver does it in DEBUG.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------

if devservices.embedded_database():
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": devservices.DATABASE_NAME,
            "USER": "postgres",
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
DATABASES["default"]["TEST"] = {"NAME": env.get("TEST_DATABASE_NAME", "test_lookbook")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery -------------------------------------------------------------------

if devservices.embedded_broker():
    CELERY_BROKER_URL = devservices.redis_url(env.get_int("LOOKBOOK_REDIS_DB", 0))
else:
    CELERY_BROKER_URL = env.require("CELERY_BROKER_URL", "broker URL")
CELERY_RESULT_BACKEND = env.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.get_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False

# --- Files --------------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.get("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.get("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploads bigger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env.get_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 30 * 1024 * 1024)

# --- App settings ---------------------------------------------------------------

# Upload validation (catalog.validators): bytes and decoded pixels per image.
CATALOG_MAX_UPLOAD_BYTES = env.get_int("CATALOG_MAX_UPLOAD_BYTES", 15 * 1024 * 1024)
CATALOG_MAX_IMAGE_PIXELS = env.get_int("CATALOG_MAX_IMAGE_PIXELS", 40_000_000)
CATALOG_PAGE_SIZE = env.get_int("CATALOG_PAGE_SIZE", 24)

RECOMMENDER_TOP_K = env.get_int("RECOMMENDER_TOP_K", 6)
RECOMMENDER_MAX_K = env.get_int("RECOMMENDER_MAX_K", 50)
# hnsw.ef_search: each region probe of snapshot -> items (16 probes), and the one probe of item ->
# snapshots (a 32-region look's rows crowd around an item, so it walks wider). docs/recommender.md.
RECOMMENDER_EF_SEARCH = env.get_int("RECOMMENDER_EF_SEARCH", 40)
RECOMMENDER_EF_SEARCH_SNAPSHOTS = env.get_int("RECOMMENDER_EF_SEARCH_SNAPSHOTS", 200)
RECOMMENDER_QUERY_TIMEOUT_S = env.get_float("RECOMMENDER_QUERY_TIMEOUT_S", 20.0)

ML_ARTIFACTS_DIR = Path(env.get("ML_ARTIFACTS_DIR", str(VAR_DIR / "models")))
ML_CACHE_DIR = Path(env.get("ML_CACHE_DIR", str(VAR_DIR / "ml-cache")))
ML_BACKBONE = env.get("ML_BACKBONE", "efficientnet_lite2")
ML_EMBED_BATCH_SIZE = env.get_int("ML_EMBED_BATCH_SIZE", 16)
ML_RETRAIN_MIN_NEW_POSTS = env.get_int("ML_RETRAIN_MIN_NEW_POSTS", 50)
ML_HELDOUT_SHARE = env.get_float("ML_HELDOUT_SHARE", 0.2)

HEALTH_WORKER_PING_TIMEOUT_S = env.get_float("HEALTH_WORKER_PING_TIMEOUT_S", 1.0)

# --- Auth, i18n -------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security (production) ----------------------------------------------------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", True)
    # /healthz is probed over plain HTTP inside the container network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- workers (issue 6) ---
# Where each task runs: shopper queries on their own low-latency queue; embedding and
# training on the GPU/embedding box; small bookkeeping (sweep, retrain check) on "default".
CELERY_TASK_ROUTES = {
    "workers.embed_query": {"queue": "queries"},
    "workers.embed_snapshots": {"queue": "embedding"},
    "workers.embed_items": {"queue": "embedding"},
    "workers.reindex_version": {"queue": "embedding"},
    "workers.activate_version": {"queue": "embedding"},
    "workers.model_bootstrap": {"queue": "training"},
    "workers.train_version": {"queue": "training"},
    "workers.evaluate_version": {"queue": "training"},
    "workers.embedding_sweep": {"queue": "default"},
    "workers.retrain_check": {"queue": "default"},
}
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# How often a worker looks for messages a dead worker took and never acknowledged (kombu's Redis
# transport: a scan every interval x throttle seconds restores those older than the visibility timeout).
CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"] = env.get_int("CELERY_UNACKED_RESTORE_INTERVAL", 10)
CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_throttle"] = env.get_int("CELERY_UNACKED_RESTORE_THROTTLE", 10)
# Python package providing the ml contract (artifact, training, evaluation submodules); tests swap in a fake.
WORKERS_ML_PACKAGE = env.get("WORKERS_ML_PACKAGE", "ml")
WORKERS_SWEEP_BATCH = env.get_int("WORKERS_SWEEP_BATCH", 500)
# A pending image is re-enqueued by the sweep only after this long (its own on-commit task comes first).
WORKERS_SWEEP_GRACE_S = env.get_int("WORKERS_SWEEP_GRACE_S", 120)
# A re-index job whose heartbeat is older than this is considered dead and resumed by the sweep.
WORKERS_REINDEX_STALE_S = env.get_int("WORKERS_REINDEX_STALE_S", 600)
WORKERS_EMBED_TIME_LIMIT_S = env.get_int("WORKERS_EMBED_TIME_LIMIT_S", 600)
WORKERS_QUERY_TIME_LIMIT_S = env.get_int("WORKERS_QUERY_TIME_LIMIT_S", 60)
WORKERS_TRAIN_TIME_LIMIT_S = env.get_int("WORKERS_TRAIN_TIME_LIMIT_S", 6 * 3600)
WORKERS_BOOTSTRAP_ON_START = env.get_bool("WORKERS_BOOTSTRAP_ON_START", True)
# Promote a trained version only if it beats the active one on this held-out metric by more than the gain.
ML_PROMOTION_METRIC = env.get("ML_PROMOTION_METRIC", "s2i_map21_seed")
ML_PROMOTION_MIN_GAIN = env.get_float("ML_PROMOTION_MIN_GAIN", 0.0)
# Training epochs (0: the ml trainer's default) and item input size (0: the backbone's default).
ML_TRAIN_EPOCHS = env.get_int("ML_TRAIN_EPOCHS", 0)
ML_TRAIN_IMAGE_SIZE = env.get_int("ML_TRAIN_IMAGE_SIZE", 0)

# --- Recommender (issue 5) ---
# HNSW build parameters for each model version's partial index (recommender.indexes).
RECOMMENDER_HNSW_M = env.get_int("RECOMMENDER_HNSW_M", 16)
# The snapshot regions' index needs the better graph (overlapping windows), the item index the faster one.
RECOMMENDER_HNSW_EF_CONSTRUCTION = env.get_int("RECOMMENDER_HNSW_EF_CONSTRUCTION", 64)
RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS = env.get_int("RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS", 128)
# pgvector >= 0.8: keep scanning the graph until enough rows pass the filters ("off" disables).
RECOMMENDER_ITERATIVE_SCAN = env.get("RECOMMENDER_ITERATIVE_SCAN", "strict_order")
RECOMMENDER_MAX_SCAN_TUPLES = env.get_int("RECOMMENDER_MAX_SCAN_TUPLES", 20000)
# Alpha query expansion: re-query with the top-n results blended in (0 = off).
RECOMMENDER_QUERY_EXPANSION_N = env.get_int("RECOMMENDER_QUERY_EXPANSION_N", 0)
RECOMMENDER_QUERY_TASK = env.get("RECOMMENDER_QUERY_TASK", "workers.embed_query")
RECOMMENDER_QUERY_QUEUE = env.get("RECOMMENDER_QUERY_QUEUE", "queries")
# "halfvec" (16-bit graph, a third of the size, up to 4,000 dims) or "vector" (full precision, up to 2,000).
RECOMMENDER_INDEX_PRECISION = env.get("RECOMMENDER_INDEX_PRECISION", "halfvec")
# Snapshot -> items probes the item index once per snapshot region. Query with this region scheme
# of ml.regions (a subset of the version's own scheme; "" = every stored region). Snapshots keep
# all their regions for item -> snapshots. CCP-Posts val, docs/recommender.md: multiscale16 keeps
# s->i mAP@21 at 66.7 (32 regions: 67.0) with half the probes.
RECOMMENDER_SNAPSHOT_QUERY_REGIONS = env.get("RECOMMENDER_SNAPSHOT_QUERY_REGIONS", "multiscale16")
# With filters, fewer matching vector rows than this are ranked by an exact scan; more, by the HNSW walk.
RECOMMENDER_EXACT_BELOW_ROWS = env.get_int("RECOMMENDER_EXACT_BELOW_ROWS", 2000)
# A style with at least this many of a version's rows in a table, and at most this share of them,
# gets its own partial HNSW index there (recommender.indexes), built with the version's indexes.
RECOMMENDER_STYLE_INDEX_MIN_ROWS = env.get_int("RECOMMENDER_STYLE_INDEX_MIN_ROWS", 2000)
RECOMMENDER_STYLE_INDEX_MAX_SHARE = env.get_float("RECOMMENDER_STYLE_INDEX_MAX_SHARE", 0.5)
# A one-style filter walking that style's own graph uses each direction's ef_search times this: the
# style's rows are sparser, so a narrower walk finds the same nearest rows (docs/recommender.md).
RECOMMENDER_EF_SEARCH_STYLE_FACTOR = env.get_float("RECOMMENDER_EF_SEARCH_STYLE_FACTOR", 0.4)
# Database connections one snapshot -> items search spreads its region probes over (the request's
# own + helpers kept by each web process); 1 = one statement on the request's connection.
RECOMMENDER_PROBE_CONNECTIONS = env.get_int("RECOMMENDER_PROBE_CONNECTIONS", 2)

# --- catalog (issue 3) ---
# Thumbnails for lists and pages: JPEG, this many pixels wide (never enlarged).
CATALOG_THUMBNAIL_WIDTH = env.get_int("CATALOG_THUMBNAIL_WIDTH", 320)
# Embedding tasks are sent by name to this queue, with at most this many ids per task.
CATALOG_EMBEDDING_QUEUE = env.get("CATALOG_EMBEDDING_QUEUE", "embedding")
CATALOG_EMBED_BATCH_SIZE = env.get_int("CATALOG_EMBED_BATCH_SIZE", 64)
# Importers commit after this many rows (a crash loses at most one batch).
CATALOG_IMPORT_BATCH_SIZE = env.get_int("CATALOG_IMPORT_BATCH_SIZE", 50)
