"""Celery (the CELERY_ namespace of workers/celery.py): broker, results, routes, delivery.

The broker is the embedded Redis (config.devservices) unless CELERY_BROKER_URL names a real one.
"""

from config import devservices, env
from workers.registry import task_routes

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
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Seconds before a dead worker's unacknowledged message is given to another worker.
    "visibility_timeout": env.get_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # How often a worker looks for such messages (kombu's Redis transport: a scan every
    # interval x throttle seconds restores those older than the visibility timeout).
    "unacked_restore_interval": env.get_int("CELERY_UNACKED_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": env.get_int("CELERY_UNACKED_RESTORE_THROTTLE", 10),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

CELERY_TASK_DEFAULT_QUEUE = "default"
# Where each task runs: shopper queries on their own low-latency queue; embedding and
# training on the GPU/embedding box; small bookkeeping (sweep, retrain check) on "default".
CELERY_TASK_ROUTES = task_routes()  # one registry of task name, queue and job kind
