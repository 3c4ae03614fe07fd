"""Beat row: the hourly style-graph check (``workers.style_graphs_ensure``)."""

from django.db import migrations

NAME = "Style graphs check (hourly)"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "workers.style_graphs_ensure",
            "interval": hourly,
            "queue": "default",
            "enabled": True,
            "description": "Builds a partial HNSW index for each style that now holds enough of the active "
            "version's rows (RECOMMENDER_STYLE_INDEX_MIN_ROWS), so one-style filters walk only its rows.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0002_beat_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
