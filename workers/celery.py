"""The Celery application. Workers: `celery -A workers worker -Q <queues>`; beat: `celery -A workers beat`."""

import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

if os.path.basename(sys.argv[0]) == "celery" and os.environ.get("LOOKBOOK_NO_DEVSERVICES") != "1":
    # `celery -A workers worker|beat` on the embedded stack: make sure PostgreSQL/Redis are up.
    from config import devservices

    devservices.ensure_started()

app = Celery("lookbook")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
