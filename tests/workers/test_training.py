"""Training data from the catalog, the deterministic held-out split, evaluation and promotion."""

from __future__ import annotations

import pytest

from recommender.models import ModelVersion
from workers.models import Job
from workers.training import is_heldout, records_for, split_posts, training_posts

pytestmark = pytest.mark.django_db


def test_heldout_split_is_deterministic_and_near_the_share():
    ids = range(1, 2001)
    first = [i for i in ids if is_heldout(i, 0.2)]
    assert first == [i for i in ids if is_heldout(i, 0.2)]
    assert 0.17 < len(first) / 2000 < 0.23
    # growing the share only adds posts to the held-out side
    assert set(first) <= {i for i in ids if is_heldout(i, 0.3)}


def test_each_post_is_a_class_and_a_shared_item_appears_once_per_post(make_colour_post):
    first = make_colour_post(0, n_items=2)
    shared = first.items.first()
    second = make_colour_post(1, n_items=1, items=[shared])
    from catalog.models import Snapshot

    unpublished = make_colour_post(3, n_items=1)
    Snapshot.objects.filter(pk=unpublished.pk).update(is_published=False)

    posts = training_posts()
    assert [p.post_id for p in posts] == [first.pk, second.pk]
    records = records_for(posts)
    assert records.count((first.image.path, 0, "snapshot")) == 1
    assert (shared.image.path, 0, "item") in records and (shared.image.path, 1, "item") in records
    assert len(records) == (1 + 2) + (1 + 2)


def _catalog(make_colour_post, monkeypatch, n=9):
    """n posts; every third one held out (the hashing split is tested above; here its size must be known)."""
    monkeypatch.setattr("workers.training.is_heldout", lambda post_id, share: post_id % 3 == 0)
    return [make_colour_post(i, n_items=2) for i in range(n)]


@pytest.mark.django_db(transaction=True)
def test_a_better_model_is_promoted_and_switched_without_a_gap(
    settings, make_version, make_colour_post, django_capture_on_commit_callbacks, monkeypatch, sent_tasks
):
    from workers.versioning import switch_to, train_evaluate_promote

    settings.ML_HELDOUT_SHARE = 0.4
    active = make_version(mode="hash", activate=True)
    _catalog(make_colour_post, monkeypatch)
    _, heldout = split_posts(training_posts(), 0.4)
    assert len(heldout) == 3
    monkeypatch.setenv("FAKE_ML_TRAIN_MODE", "color")

    result = train_evaluate_promote()

    version = ModelVersion.objects.get(pk=result["version_id"])
    assert result["promoted"] is True
    assert version.status == "ready"  # serves only after the re-index and the switch
    assert version.metrics["s2i_map21_seed"] > version.metrics["active"]["s2i_map21_seed"]
    assert version.metrics["active"]["version"] == active.name
    assert version.training_counts["heldout_posts"] == len(heldout)
    assert "beats active" in version.decision
    assert [name for name, _ in sent_tasks] == ["workers.activate_version"]
    assert Job.objects.get(kind="activate").model_version == version

    switch_to(version)
    version.refresh_from_db()
    active.refresh_from_db()
    assert (version.status, active.status) == ("active", "retired")
    assert version.index_state == "complete"


def test_a_worse_model_stays_ready_with_its_metrics(settings, make_version, make_colour_post, monkeypatch):
    from workers.versioning import train_evaluate_promote

    settings.ML_HELDOUT_SHARE = 0.4
    active = make_version(mode="color", activate=True)
    _catalog(make_colour_post, monkeypatch)
    monkeypatch.setenv("FAKE_ML_TRAIN_MODE", "hash")

    result = train_evaluate_promote()

    version = ModelVersion.objects.get(pk=result["version_id"])
    active.refresh_from_db()
    assert result["promoted"] is False
    assert version.status == "ready" and active.status == "active"
    assert version.metrics["s2i_map21_seed"] <= version.metrics["active"]["s2i_map21_seed"]
    assert "does not beat" in version.decision
    assert not Job.objects.filter(kind="activate").exists()


def test_training_needs_posts(make_version):
    from workers.versioning import train_evaluate_promote

    make_version(activate=True)
    with pytest.raises(ValueError, match="at least 2 published posts"):
        train_evaluate_promote()


def test_retrain_check_counts_new_posts(settings, make_version, make_colour_post, django_capture_on_commit_callbacks):
    from workers.tasks import retrain_check

    settings.ML_RETRAIN_MIN_NEW_POSTS = 3
    make_version(activate=True, pretrained=True)
    make_colour_post(0)
    make_colour_post(1)
    assert retrain_check.run() == {"new_posts": 2, "started": False}
    make_colour_post(2)
    with django_capture_on_commit_callbacks(execute=False):
        result = retrain_check.run()
    assert result["started"] is True and result["new_posts"] == 3
    assert Job.objects.get(pk=result["job_id"]).kind == "train"


def test_a_failed_training_run_is_a_failed_job_with_the_reason(make_version):
    from workers.tasks import train_version

    make_version(activate=True)
    result = train_version.apply()
    job = Job.objects.get(kind="train")
    assert result.failed()
    assert job.status == "failed" and "at least 2 published posts" in job.error
    assert job.finished_at is not None and job.attempts == 1


def test_a_retrain_starts_from_the_active_trained_version_else_from_imagenet(
    settings, make_version, make_colour_post, monkeypatch
):
    from tests.workers.fake_ml import artifact
    from workers.ml_runtime import artifact_dir
    from workers.training import train_new_version

    _catalog(make_colour_post, monkeypatch, n=6)
    pretrained = make_version(mode="hash", activate=True, pretrained=True)
    version, _ = train_new_version()
    assert version.training_counts["started_from"] == "imagenet"
    assert artifact._manifest(artifact_dir(version))["info"]["warm_start"] is False
    version.delete()  # names are per second: the next run may take the same one

    trained = make_version(mode="color")
    from recommender.versions import version_activate

    version_activate(version=trained, require_complete=False)
    version, _ = train_new_version()
    assert version.training_counts["started_from"] == f"version {trained.name}"
    assert artifact._manifest(artifact_dir(version))["info"]["warm_start"] is True
    version.delete()

    settings.ML_TRAIN_FROM = "imagenet"
    version, _ = train_new_version()
    assert version.training_counts["started_from"] == "imagenet"
    version.delete()
    settings.ML_TRAIN_FROM = "active"
    version, _ = train_new_version(config_overrides={"dim": 8})  # explicit overrides: a fresh model
    assert version.training_counts["started_from"] == "imagenet"
    assert pretrained.pk != trained.pk
