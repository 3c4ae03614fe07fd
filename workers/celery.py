"""The Celery application. Workers: `celery -A workers worker -Q <queues>`; beat: `celery -A workers beat`.

Importing this module starts nothing. The `celery` command run by hand on the embedded stack
starts PostgreSQL and Redis when it first loads its configuration (below); the workers that
config.run, the tests and bench/ start run `python -m celery` once their parent has started them.
"""

import os
import sys

from celery import Celery

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
