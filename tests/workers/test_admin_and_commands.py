"""Staff-facing parts: the beat schedule rows, the admin pages and actions, the manage.py commands."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from recommender.models import ModelVersion
from workers.models import Job

pytestmark = pytest.mark.django_db


def test_the_schedule_is_in_the_database_for_staff_to_edit():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="workers.")}
    sweep, retrain = tasks["workers.embedding_sweep"], tasks["workers.retrain_check"]
    assert (sweep.interval.every, sweep.interval.period, sweep.enabled) == (1, "minutes", True)
    assert (retrain.crontab.hour, retrain.crontab.minute, retrain.enabled) == ("2", "30", True)
    styles = tasks["workers.style_graphs_ensure"]
    assert (styles.interval.every, styles.interval.period, styles.enabled) == (1, "hours", True)
    from workers.celery import app

    app.loader.import_default_modules()  # what a worker does at start: the tasks modules, autodiscovered
    assert {"workers.embedding_sweep", "workers.retrain_check", "workers.style_graphs_ensure"} <= set(app.tasks)


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def test_model_version_admin_shows_metrics_and_progress(staff_client, make_version):
    version = make_version(activate=True)
    ModelVersion.objects.filter(pk=version.pk).update(
        metrics={"s2i_map21_seed": 31.25}, index_progress={"done": 3, "total": 4, "failed": 1}
    )
    Job.objects.create(kind="reindex", status="running", model_version=version, progress_done=1, progress_total=4)
    changelist = staff_client.get(reverse("admin:recommender_modelversion_changelist"))
    detail = staff_client.get(reverse("admin:recommender_modelversion_change", args=[version.pk]))
    assert changelist.status_code == 200 and detail.status_code == 200
    body = changelist.content.decode()
    assert "31.2500" in body and "3/4 (1 failed)" in body
    assert "Re-index a model version (running, 25%)" in body
    assert "s2i_map21_seed" in detail.content.decode()


@pytest.mark.parametrize(
    ("action", "task"),
    [
        ("retrain_now", "workers.train_version"),
        ("evaluate", "workers.evaluate_version"),
        ("activate", "workers.activate_version"),
    ],
)
def test_admin_actions_queue_jobs(
    staff_client, make_version, sent_tasks, django_capture_on_commit_callbacks, action, task
):
    make_version(activate=True)
    ready = make_version()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:recommender_modelversion_changelist"),
            {"action": action, "_selected_action": [ready.pk]},
            follow=True,
        )
    assert response.status_code == 200
    assert [name for name, _ in sent_tasks] == [task]
    job = Job.objects.get()
    assert job.status == "queued" and job.celery_task_id == "recorded"


def test_admin_rollback_queues_the_previous_version(
    staff_client, make_version, sent_tasks, django_capture_on_commit_callbacks
):
    from recommender.versions import version_activate

    first = make_version(activate=True)
    second = make_version()
    version_activate(version=second)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            reverse("admin:recommender_modelversion_changelist"),
            {"action": "rollback", "_selected_action": [second.pk]},
        )
    assert sent_tasks[0][0] == "workers.activate_version"
    assert sent_tasks[0][1]["kwargs"]["version_id"] == first.pk


def test_a_failed_job_is_retried_from_the_admin(staff_client, sent_tasks, django_capture_on_commit_callbacks):
    failed = Job.objects.create(kind="reindex", status="failed", arguments={"version_id": 7}, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(reverse("admin:workers_job_changelist"), {"action": "retry", "_selected_action": [failed.pk]})
    retried = Job.objects.exclude(pk=failed.pk).get()
    assert (retried.kind, retried.arguments, retried.status) == ("reindex", {"version_id": 7}, "queued")
    assert sent_tasks[0][1]["kwargs"] == {"version_id": 7, "job_id": retried.pk}
    assert staff_client.get(reverse("admin:workers_job_changelist")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_bootstrap_activate_and_rollback_commands(make_colour_post, make_version, capsys):
    post = make_colour_post(0, n_items=1)
    call_command("model_bootstrap", backbone="fake", model="pretrained")
    pretrained = ModelVersion.objects.active().get()
    assert pretrained.is_pretrained_only and pretrained.name.startswith("pretrained-fake-")
    post.refresh_from_db()
    assert post.embedding_status == "ready"
    call_command("model_bootstrap", backbone="fake", model="pretrained")  # idempotent
    assert ModelVersion.objects.count() == 1

    trained = make_version(mode="color")
    call_command("model_activate", str(trained.pk))
    trained.refresh_from_db()
    assert trained.status == "active" and trained.index_state == "complete"
    assert post.embeddings.filter(model_version=trained).exists()

    call_command("model_rollback")
    pretrained.refresh_from_db()
    assert pretrained.status == "active"
    assert "Rolled back" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no model version with id"):
        call_command("model_activate", "999999")


@pytest.mark.django_db(transaction=True)
def test_the_default_bootstrap_builds_the_shipped_model_and_a_broken_one_fails_visibly(
    make_colour_post, monkeypatch, capsys
):
    post = make_colour_post(0, n_items=1)
    call_command("model_bootstrap", backbone="fake")  # ML_BOOTSTRAP_MODEL defaults to "shipped"
    shipped = ModelVersion.objects.active().get()
    assert not shipped.is_pretrained_only and shipped.name.startswith("shipped-fake-trained-")
    assert "shipped in the repository" in shipped.decision
    assert shipped.metrics == {"shipped": {"s2i_map21_seed": 82.9}}  # where it was measured, for staff
    post.refresh_from_db()
    assert post.embedding_status == "ready"
    call_command("model_bootstrap", backbone="fake")  # idempotent
    assert ModelVersion.objects.count() == 1
    assert "exists" in capsys.readouterr().out

    ModelVersion.objects.all().delete()
    monkeypatch.setenv("FAKE_ML_SHIPPED_MISSING", "1")
    with pytest.raises(Exception, match="no readable manifest.json"):
        call_command("model_bootstrap", backbone="fake")
    assert not ModelVersion.objects.exists()  # nothing half-made: the manifest is read before a version row


@pytest.mark.django_db(transaction=True)
def test_reindex_command_embeds_every_image_and_marks_the_reindex_complete(make_colour_post, make_version, capsys):
    post = make_colour_post(0, n_items=1)
    version = make_version(mode="color")
    call_command("model_reindex", str(version.pk))
    version.refresh_from_db()
    assert version.index_state == "complete" and version.indexed_at is not None
    assert version.status == "ready"  # a re-index alone switches nothing
    assert post.embeddings.filter(model_version=version).exists()
    assert "2 images embedded, 0 failed." in capsys.readouterr().out
    with pytest.raises(CommandError, match="no model version with id"):
        call_command("model_reindex", "999999")


def test_a_reindex_that_failed_its_version_does_not_mark_it_complete(make_version, monkeypatch):
    from recommender.versions import version_mark_failed
    from workers.versioning import reindex_and_complete

    version = make_version(mode="color")

    def reindex(*, version, progress=None):  # the artifact broke midway: embedding marked it failed
        version_mark_failed(version=version, reason="artifact missing")
        return {"total": 1, "done": 1, "failed": 0}

    monkeypatch.setattr("workers.embedding.reindex", reindex)
    assert reindex_and_complete(version)["done"] == 1
    version.refresh_from_db()
    assert (version.status, version.index_state) == ("failed", "none")


def test_evaluate_command_needs_an_existing_version_and_reports_the_decision(make_version, capsys):
    version = make_version()
    call_command("model_evaluate", str(version.pk))
    assert "no held-out posts to evaluate on" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no model version with id"):
        call_command("model_evaluate", "999999", promote=True)
