"""The ModelVersion services: promotion rule and the version switch (real PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from recommender.models import IndexState, ModelVersion
from recommender.versions import (
    VersionSwitchError,
    promotion_decide,
    version_activate,
    version_mark_failed,
    version_missing_counts,
    version_rollback_target,
)

pytestmark = pytest.mark.django_db


# --- promotion rule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "active", "min_gain", "promote"),
    [
        ({"m": 30.0}, {"m": 20.0}, 0.0, True),
        ({"m": 20.0}, {"m": 20.0}, 0.0, False),  # a tie keeps the active version
        ({"m": 19.9}, {"m": 20.0}, 0.0, False),
        ({"m": 20.5}, {"m": 20.0}, 1.0, False),  # not enough gain
        ({"m": 21.5}, {"m": 20.0}, 1.0, True),
        ({"m": 5.0}, None, 0.0, True),  # nothing active yet
        ({"m": 5.0}, {"other": 1.0}, 0.0, True),  # active never measured on this metric
        ({}, {"m": 1.0}, 0.0, False),  # candidate without the metric
        ({"m": float("nan")}, {"m": 1.0}, 0.0, False),
    ],
)
def test_promotion_rule(candidate, active, min_gain, promote):
    decision = promotion_decide(candidate_metrics=candidate, active_metrics=active, metric="m", min_gain=min_gain)
    assert decision.promote is promote
    assert "m" in decision.reason


# --- the switch ---------------------------------------------------------------------------------


def test_activation_switches_in_one_step_and_keeps_the_previous_version(make_version, make_colour_post):
    from catalog.services.embeddings import snapshot_embeddings_write

    old = make_version(activate=True)
    post = make_colour_post(0, n_items=0)
    snapshot_embeddings_write(model_version=old, vectors={post.pk: [[1.0] * 8]})
    new = make_version()

    with pytest.raises(VersionSwitchError, match="lacks vectors for 1 snapshots"):
        version_activate(version=new)
    old.refresh_from_db()
    assert old.status == "active"

    snapshot_embeddings_write(model_version=new, vectors={post.pk: [[0.5] * 8]})
    assert version_missing_counts(version=new, reference=old) == {"snapshots": 0, "items": 0}
    version_activate(version=new)

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == ("retired", "active")
    assert new.index_state == IndexState.COMPLETE and new.activated_at is not None
    assert list(ModelVersion.objects.active()) == [new]
    assert version_rollback_target() == old
    # the old version's vectors stay for rollback
    assert old.pk in set(post.embeddings.values_list("model_version_id", flat=True))


def test_rollback_restores_the_previous_version(make_version):
    first = make_version(activate=True)
    second = make_version()
    version_activate(version=second)
    version_activate(version=version_rollback_target())
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("active", "retired")
    assert version_rollback_target() == second


def test_only_ready_or_retired_versions_can_be_activated(make_version):
    make_version(activate=True)
    failed = make_version()
    version_mark_failed(version=failed, reason="broken")
    with pytest.raises(VersionSwitchError, match="only a ready or retired"):
        version_activate(version=failed)


def test_the_active_version_is_never_marked_failed(make_version):
    active = make_version(activate=True)
    assert version_mark_failed(version=active, reason="artifact vanished") is False
    active.refresh_from_db()
    assert active.status == "active"
    assert active.error == "artifact vanished"


def test_database_allows_one_active_version(make_version):
    make_version(activate=True)
    other = make_version()
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=other.pk).update(status="active")


def test_embedding_targets_are_active_and_indexing_versions(make_version):
    from recommender.versions import version_index_state_set

    active = make_version(activate=True)
    indexing = make_version()
    idle = make_version()
    version_index_state_set(version=indexing, state=IndexState.INDEXING)
    targets = set(ModelVersion.objects.embedding_targets())
    assert targets == {active, indexing}
    assert idle not in targets
