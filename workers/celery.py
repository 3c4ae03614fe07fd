"""The Celery application. Workers: `celery -A workers worker -Q <queues>`; beat: `celery -A workers beat`.

Importing this module starts nothing. The `celery` command run by hand on the embedded stack
starts PostgreSQL and Redis when it first loads its configuration (below); the workers that
config.run, the tests and bench/ start run `python -m celery` once their parent has started them.
"""

import os
import sys

from celery import Celery, signals

from config import devservices

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("lookbook")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def _start_embedded_services(sender: Celery, **kwargs) -> None:
    """`celery -A workers worker|beat|inspect|...`: the servers are up before the settings are read
    (the database settings point at the running server's socket)."""
    if os.path.basename(sys.argv[0]) == "celery":
        devservices.start_for_command()


@signals.celeryd_init.connect
def _worker_redis_waits(conf, **kwargs) -> None:
    """A worker waits longer on Redis than a process that only sends tasks (config.settings.celery):
    set before it opens its broker connection or its result store."""
    from django.conf import settings

    conf.update(
        broker_connection_timeout=settings.WORKERS_REDIS_CONNECT_TIMEOUT_S,
        broker_transport_options={
            **conf.broker_transport_options,
            "socket_connect_timeout": settings.WORKERS_REDIS_CONNECT_TIMEOUT_S,
            "socket_timeout": settings.WORKERS_REDIS_SOCKET_TIMEOUT_S,
        },
        redis_socket_connect_timeout=settings.WORKERS_REDIS_CONNECT_TIMEOUT_S,
        redis_socket_timeout=settings.WORKERS_REDIS_SOCKET_TIMEOUT_S,
        result_backend_transport_options={
            **conf.result_backend_transport_options,
            "retry_policy": settings.WORKERS_RESULT_RETRY_POLICY,
        },
    )
