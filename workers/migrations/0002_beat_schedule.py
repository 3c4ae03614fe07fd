"""The periodic tasks, as django-celery-beat rows so staff see and edit them in the admin."""

from django.db import migrations

SWEEP = "Embedding sweep (every minute)"
RETRAIN = "Nightly retrain check"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=SWEEP,
        defaults={
            "task": "workers.embedding_sweep",
            "interval": every_minute,
            "queue": "default",
            "enabled": True,
            "description": "Builds the first model on a fresh install, resumes a dead re-index and "
            "enqueues embedding for images still pending.",
        },
    )
    PeriodicTask.objects.update_or_create(
        name=RETRAIN,
        defaults={
            "task": "workers.retrain_check",
            "crontab": nightly,
            "queue": "default",
            "enabled": True,
            "description": "Trains a new model version when at least ML_RETRAIN_MIN_NEW_POSTS posts were "
            "published since the last training; it is promoted only if it beats the active version.",
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[SWEEP, RETRAIN]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0001_job"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
