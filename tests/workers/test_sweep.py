"""The periodic sweep's bootstrap and resume checks, and a bad artifact met during embedding."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import IndexState
from recommender.versions import version_index_state_set
from workers.models import Job

pytestmark = pytest.mark.django_db


def test_bootstrap_is_queued_once_when_no_version_exists(sent_tasks, django_capture_on_commit_callbacks):
    from workers.versioning import bootstrap_if_needed

    with django_capture_on_commit_callbacks(execute=True):
        assert bootstrap_if_needed() == "queued"
        assert bootstrap_if_needed() == "already queued"
    assert [name for name, _ in sent_tasks] == ["workers.model_bootstrap"]
    Job.objects.update(status="failed", finished_at=timezone.now())
    assert bootstrap_if_needed().startswith("failed recently")  # no retry storm every minute


def test_no_bootstrap_when_a_version_exists(make_version, sent_tasks):
    from workers.versioning import bootstrap_if_needed

    make_version(activate=True)
    assert bootstrap_if_needed() == "not needed"
    assert sent_tasks == []


def test_a_reindex_whose_worker_died_is_resumed(make_version, sent_tasks, django_capture_on_commit_callbacks):
    from workers.versioning import resume_stale_reindex

    version = make_version()
    stale = Job.objects.create(
        kind="reindex",
        status="running",
        arguments={"version_id": version.pk},
        model_version=version,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    Job.objects.create(
        kind="reindex", status="running", arguments={"version_id": version.pk}, heartbeat_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        resumed = resume_stale_reindex()
    stale.refresh_from_db()
    assert stale.status == "failed" and "resumed" in stale.error
    assert len(resumed) == 1
    assert sent_tasks[0][0] == "workers.reindex_version" and sent_tasks[0][1]["kwargs"]["version_id"] == version.pk


def test_a_reindexed_version_with_a_broken_artifact_fails_and_the_active_one_still_embeds(
    make_version, make_colour_post
):
    import shutil

    from tests.workers.conftest import vectors_of
    from workers.embedding import embed_images
    from workers.ml_runtime import artifact_dir

    active = make_version(activate=True)
    broken = make_version(mode="color")
    version_index_state_set(version=broken, state=IndexState.INDEXING)
    shutil.rmtree(artifact_dir(broken))
    post = make_colour_post(0, n_items=0)

    counts = embed_images(kind="snapshot", ids=[post.pk])

    broken.refresh_from_db()
    assert counts["versions"] == [active.pk] and counts["embedded"] == 1
    assert broken.status == "failed" and "artifact missing" in broken.error
    assert list(vectors_of(active, "snapshot")) == [post.pk]
