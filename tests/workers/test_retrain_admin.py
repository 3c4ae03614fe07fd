"""The model versions' "Retrain now" button and the running training as staff see it: progress with
elapsed time and the time left, and links between the job and its version."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.versions import version_create
from workers.models import Job

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:recommender_modelversion_changelist"
RETRAIN = "admin:recommender_modelversion_retrain"


def _client(django_user_model, *, superuser=True, perms=()) -> Client:
    client = Client(enforce_csrf_checks=True)
    if superuser:
        user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    else:
        user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client.force_login(user)
    return client


def _csrf_token(page) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_button_queues_training_on_its_queue_and_comes_back_with_a_message(
    django_user_model, sent_tasks, django_capture_on_commit_callbacks
):
    client = _client(django_user_model)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    body = page.content.decode()
    assert f'action="{reverse(RETRAIN)}"' in body and ">Retrain now</button>" in body
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(RETRAIN), {"csrfmiddlewaretoken": _csrf_token(page)}, follow=True)
    assert response.redirect_chain == [(reverse(CHANGELIST), 302)]
    job = Job.objects.get()
    assert (job.kind, job.status) == ("train", "queued")
    assert [(name, options["queue"]) for name, options in sent_tasks] == [("workers.train_version", "training")]
    assert _messages(response) == [
        f"Training queued as job #{job.pk}; the new version appears here when it starts, "
        "with its progress and an estimate of the time left."
    ]
    # The changelist now names the queued run, linked to its job.
    assert f'href="{reverse("admin:workers_job_change", args=[job.pk])}"' in response.content.decode()
    assert f"Training job #{job.pk} queued" in response.content.decode()

    again = client.post(reverse(RETRAIN), {"csrfmiddlewaretoken": _csrf_token(page)}, follow=True)
    assert _messages(again) == [
        f"Training job #{job.pk} is already queued, waiting for the training worker; "
        "a new run can start once it has finished."
    ]
    assert Job.objects.count() == 1 and len(sent_tasks) == 1


def test_the_button_refuses_while_a_run_is_going(django_user_model, sent_tasks):
    running = Job.objects.create(kind="train", status="running", started_at=timezone.now(), heartbeat_at=timezone.now())
    client = _client(django_user_model)
    page = client.get(reverse(CHANGELIST))
    response = client.post(reverse(RETRAIN), {"csrfmiddlewaretoken": _csrf_token(page)}, follow=True)
    assert _messages(response) == [
        f"Training job #{running.pk} is already running; a new run can start once it has finished."
    ]
    assert Job.objects.count() == 1 and sent_tasks == []


def test_the_button_takes_only_a_post_with_its_csrf_token(django_user_model, sent_tasks):
    client = _client(django_user_model)
    assert client.get(reverse(RETRAIN)).status_code == 405
    assert client.post(reverse(RETRAIN)).status_code == 403  # no CSRF token
    assert not Job.objects.exists() and sent_tasks == []


def test_only_staff_who_may_change_versions_see_or_use_the_button(django_user_model, client, sent_tasks):
    viewer = _client(django_user_model, superuser=False, perms=["view_modelversion"])
    page = viewer.get(reverse(CHANGELIST))
    assert page.status_code == 200 and "Retrain now</button>" not in page.content.decode()
    token = viewer.get(reverse("admin:index")).cookies["csrftoken"].value
    assert viewer.post(reverse(RETRAIN), {"csrfmiddlewaretoken": token}).status_code == 403

    anonymous = client.post(reverse(RETRAIN))  # the admin's login page
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("admin:login"))
    assert not Job.objects.exists() and sent_tasks == []


def test_a_running_training_shows_elapsed_and_time_left_and_links_job_and_version(django_user_model):
    client = _client(django_user_model)
    version = version_create(name="trained-now", backbone="fake")
    started = timezone.now() - timedelta(minutes=10)
    job = Job.objects.create(
        kind="train",
        status="running",
        model_version=version,
        started_at=started,
        heartbeat_at=timezone.now(),
        progress_done=250,
        progress_total=1000,
    )
    job_url = reverse("admin:workers_job_change", args=[job.pk])
    version_url = reverse("admin:recommender_modelversion_change", args=[version.pk])

    jobs = client.get(reverse("admin:workers_job_changelist")).content.decode()
    assert "250/1000 (25%), 10 min elapsed, about 30 min left" in jobs
    assert f'<a href="{version_url}">trained-now (Training)</a>' in jobs
    job_page = client.get(job_url).content.decode()
    assert "about 30 min left" in job_page and f'href="{version_url}"' in job_page
    assert 'name="model_version"' not in job_page  # shown as a link, not a select box to change it

    versions = client.get(reverse(CHANGELIST)).content.decode()
    assert f'<a href="{job_url}">Train a model version (running, 25%)</a>: 10 min elapsed, about 30 min left' in (
        versions
    )
    assert f"Training job #{job.pk} running: 250/1000 (25%), 10 min elapsed, about 30 min left" in versions
    version_page = client.get(version_url).content.decode()
    assert f'<a href="{job_url}">Train a model version (running, 25%)</a>' in version_page


def test_a_finished_job_shows_how_long_it_took(django_user_model):
    client = _client(django_user_model)
    started = timezone.now() - timedelta(hours=1)
    Job.objects.create(
        kind="train",
        status="failed",
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        progress_done=400,
        progress_total=1000,
    )
    jobs = client.get(reverse("admin:workers_job_changelist")).content.decode()
    assert "400/1000 (40%), took 3 min" in jobs and "min left" not in jobs
