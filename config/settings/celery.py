"""Celery (the CELERY_ namespace of workers/celery.py): broker, results, routes, delivery.

The broker is the embedded Redis (config.devservices) unless CELERY_BROKER_URL names a real one.
"""

from config import devservices, env
from config.settings import workers as workers_settings
from workers import registry

if devservices.embedded_broker():
    # `make run` uses logical database 0; the test suite takes its own (config.settings_test).
    CELERY_BROKER_URL = devservices.redis_url(env.get_int("LOOKBOOK_REDIS_DB", 0))
else:
    CELERY_BROKER_URL = env.require("CELERY_BROKER_URL", "broker URL")
CELERY_RESULT_BACKEND = env.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
# Stored task results are deleted after an hour.
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False
# A STARTED state and task events, so monitors (`celery events`, Flower) can follow each task.
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
# A worker reserves one message at a time, so a long task holds back no others it prefetched.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# On a lost broker connection, cancel running late-acknowledged tasks: they can no longer be
# acknowledged, and the broker gives them to a worker again.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Delivery after a worker dies. Redis keeps each delivered, unacknowledged message aside; a worker's scan
# (every interval x throttle seconds) gives those older than the visibility timeout back to the queue.
# Only short tasks acknowledge late (the embedding batches: idempotent upserts), and the timeout is set
# above their hard time limit, so a message comes back only once its task can no longer be running;
# tasks that may run for hours (re-index, activate, bootstrap, training) acknowledge on start, and the
# sweep resumes a re-index whose heartbeat stopped (workers.versioning.resume_stale_reindex).
# tests/workers/test_delivery.py keeps the two rules.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# Seconds before a dead worker's unacknowledged message is given back: the embedding tasks' hard limit
# (their soft limit + 60 s) plus a minute; 12 minutes with the defaults.
_LATE_ACK_HARD_LIMIT_S = workers_settings.WORKERS_EMBED_TIME_LIMIT_S + 60
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.get_int("CELERY_VISIBILITY_TIMEOUT", _LATE_ACK_HARD_LIMIT_S + 60),
    "unacked_restore_interval": env.get_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env.get_int("CELERY_UNACKED_RESTORE_THROTTLE", 3),
    # One Redis list per step; workers serve the lowest number first (registry.EMBED_PRIORITIES).
    "priority_steps": list(registry.PRIORITY_STEPS),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

CELERY_TASK_DEFAULT_QUEUE = registry.DEFAULT
# Where each task runs: shopper queries on their own low-latency queue; embedding and
# training on the GPU/embedding box; small bookkeeping (sweep, retrain check) on "default".
CELERY_TASK_ROUTES = registry.task_routes()  # one registry of task name, queue and job kind

# --- Redis unavailable: bounded waits -------------------------------------------
# Processes that send tasks (the web process, beat, manage.py) hear of a dead Redis within about a
# second instead of after the library defaults (20 result-store reconnects a second apart: 19 s, and no
# timeout on a server that accepts but never answers). A shopper's upload subscribes to its result
# before it publishes: against a server that never answers, that read gives up after the socket
# timeout and the result store's one reconnect after another, so the upload is a 503 after two socket
# timeouts. Nothing is cached after a failure: the next call connects afresh, no restart once Redis is
# back. The measurements are in docs/reliability.md.
CELERY_BROKER_CONNECTION_TIMEOUT = env.get_float("CELERY_REDIS_CONNECT_TIMEOUT_S", 0.5)
CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = CELERY_BROKER_CONNECTION_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] = env.get_float("CELERY_REDIS_SOCKET_TIMEOUT_S", 0.5)
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = CELERY_BROKER_CONNECTION_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"]
# The result store's reconnect is not retried; a publish retries once (a pooled connection that Redis
# closed when it restarted fails once, then a new one is made).
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"max_retries": 0}}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# A worker waits longer (workers.celery applies these when it starts): a slow reply from a loaded server
# would otherwise fail an acknowledgement, the unacknowledged-message scan or a stored result. Its event
# loop applies no socket timeout to BRPOP either way (kombu's redis transport).
WORKERS_REDIS_CONNECT_TIMEOUT_S = env.get_float("WORKERS_REDIS_CONNECT_TIMEOUT_S", 1.0)
WORKERS_REDIS_SOCKET_TIMEOUT_S = env.get_float("WORKERS_REDIS_SOCKET_TIMEOUT_S", 2.0)
WORKERS_RESULT_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
