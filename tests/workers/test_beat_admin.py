"""django-celery-beat's admin as this project registers it (workers/beat_admin.py): staff input that
the package answered with a 500 gets a form error or a message."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from workers import beat_admin

pytestmark = pytest.mark.django_db

CRONTAB_ADD = "/admin/django_celery_beat/crontabschedule/add/"
TASK_ADD = "/admin/django_celery_beat/periodictask/add/"
CRON = {
    **{"minute": "30", "hour": "2", "day_of_month": "*", "month_of_year": "*", "day_of_week": "*", "timezone": "UTC"},
    # the management form of the page's inline (the periodic tasks using the schedule)
    **{"periodictask_set-TOTAL_FORMS": "0", "periodictask_set-INITIAL_FORMS": "0"},
}


@pytest.fixture
def staff(client, django_user_model):
    client.raise_request_exception = True  # a 500 fails the test with its traceback
    client.force_login(django_user_model.objects.create_superuser("staff", "staff@example.com", "pw"))
    return client


def test_the_project_admin_classes_replace_the_packages():
    for model, model_admin in beat_admin.ADMINS.items():
        assert type(admin.site._registry[model]) is model_admin


@pytest.mark.parametrize(
    "field, value",
    [(name, "-1") for name in beat_admin.CRON_FIELDS] + [("day_of_week", "7"), ("day_of_month", "0")],
)
def test_a_cron_value_celery_cannot_read_is_a_form_error(staff, field, value):
    before = CrontabSchedule.objects.count()

    response = staff.post(CRONTAB_ADD, {**CRON, field: value})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert "Celery cannot read this value" in errors[field][0]
    assert CrontabSchedule.objects.count() == before


def test_a_readable_cron_value_is_saved(staff):
    response = staff.post(CRONTAB_ADD, {**CRON, "day_of_week": "mon-fri", "_save": "Save"})

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert CrontabSchedule.objects.filter(minute="30", hour="2", day_of_week="mon-fri").exists()


def test_a_stored_schedule_celery_cannot_read_is_described_not_a_500(staff):
    broken = CrontabSchedule.objects.create(minute="-1", hour="4")  # written past the admin's form
    task = PeriodicTask.objects.create(name="broken", task="workers.retrain_check", crontab=broken)

    pages = [
        "/admin/django_celery_beat/crontabschedule/",
        f"/admin/django_celery_beat/crontabschedule/{broken.pk}/change/",
        f"/admin/django_celery_beat/periodictask/{task.pk}/change/",
        TASK_ADD,
    ]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        assert "celery cannot read this schedule: negative numbers not supported" in response.content.decode(), page
    assert beat_admin.crontab_description(None) == ""
    assert beat_admin.crontab_description(CrontabSchedule(minute="0", hour="4")).startswith("At 04:00")


def test_a_task_name_over_its_length_is_a_form_error(staff):
    response = staff.post(TASK_ADD, {"name": "long", "task": "x" * 201, "interval": "1", "args": "[]", "kwargs": "{}"})

    assert response.status_code == 200
    assert "Ensure this value has at most 200 characters" in response.context["adminform"].form.errors["task"][0]
    assert not PeriodicTask.objects.filter(name="long").exists()


def test_deleting_a_schedule_in_use_deletes_its_tasks(staff):
    nightly = PeriodicTask.objects.get(task="workers.retrain_check").crontab

    response = staff.post(f"/admin/django_celery_beat/crontabschedule/{nightly.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not CrontabSchedule.objects.filter(pk=nightly.pk).exists()
    assert not PeriodicTask.objects.filter(task="workers.retrain_check").exists()


def test_a_deletion_the_database_refuses_is_a_message(staff):
    nightly = PeriodicTask.objects.get(task="workers.retrain_check").crontab
    delete = f"/admin/django_celery_beat/crontabschedule/{nightly.pk}/delete/"
    with connection.cursor() as cursor:
        # Checked at once, the key a periodic task holds fails as it does at commit when one is saved
        # with the schedule meanwhile (Django deletes the schedule first: the key is nullable).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    try:
        response = staff.post(delete, {"post": "yes"}, follow=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    assert response.redirect_chain == [(f"/admin/django_celery_beat/crontabschedule/{nightly.pk}/change/", 302)]
    assert "was not deleted: other rows still refer to it" in response.content.decode()
    assert CrontabSchedule.objects.filter(pk=nightly.pk).exists()
    assert PeriodicTask.objects.filter(crontab=nightly).exists()
