"""Embedding in-process: vectors per version, idempotent writes, bad images, re-index, sweep."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from catalog.models import EmbeddingStatus, Item, Snapshot, SnapshotGarment
from recommender.models import IndexState
from recommender.versions import version_index_state_set
from tests.workers.conftest import vectors_of
from workers.embedding import embed_images, missing_ids, reindex, sweep

pytestmark = pytest.mark.django_db


def test_embeds_for_the_active_and_the_indexing_version_and_marks_ready(make_version, make_colour_post):
    active = make_version(mode="hash", activate=True)
    indexing = make_version(mode="color")
    version_index_state_set(version=indexing, state=IndexState.INDEXING)
    post = make_colour_post(0, n_items=2)
    item_ids = list(post.items.values_list("pk", flat=True))

    counts = embed_images(kind="item", ids=item_ids)
    embed_images(kind="snapshot", ids=[post.pk])

    assert counts["embedded"] == 2 and counts["versions"] == [active.pk, indexing.pk]
    for version in (active, indexing):
        assert sorted(vectors_of(version, "item")) == sorted(item_ids)
        regions = vectors_of(version, "snapshot")[post.pk]
        assert len(regions) == 2  # region 0 and the top half; the all-zero third region is not stored
        assert np.isclose(np.linalg.norm(regions[0]), 1.0, atol=1e-5)
        # the garments come with the vectors, per version: the fake parser finds the top half
        garments = list(SnapshotGarment.objects.filter(snapshot=post, model_version=version))
        assert [(g.group, g.region, g.box) for g in garments] == [("tops", 1, [0.0, 0.0, 1.0, 0.5])]
    assert set(Item.objects.filter(pk__in=item_ids).values_list("embedding_status", flat=True)) == {"ready"}
    assert Snapshot.objects.get(pk=post.pk).embedded_at is not None


def test_re_embedding_writes_the_same_vectors_once(make_version, make_colour_post):
    version = make_version(activate=True)
    posts = [make_colour_post(i, n_items=1) for i in range(3)]
    ids = [p.pk for p in posts]
    embed_images(kind="snapshot", ids=ids)
    first = vectors_of(version, "snapshot")
    embed_images(kind="snapshot", ids=ids[1:])  # a redelivered batch, partly overlapping
    embed_images(kind="snapshot", ids=ids)
    assert vectors_of(version, "snapshot") == first
    assert version.pk and sum(len(v) for v in first.values()) == 6


def test_a_bad_image_is_marked_failed_with_its_reason_and_the_rest_go_on(make_version, make_colour_post):
    make_version(activate=True)
    good = make_colour_post(0, n_items=0)
    bad = make_colour_post(1, n_items=0)
    with open(bad.image.path, "wb") as f:
        f.write(b"this is not a picture")
    counts = embed_images(kind="snapshot", ids=[good.pk, bad.pk])
    good.refresh_from_db()
    bad.refresh_from_db()
    assert counts["embedded"] == 1 and counts["failed"] == 1
    assert good.embedding_status == EmbeddingStatus.READY
    assert bad.embedding_status == EmbeddingStatus.FAILED
    assert "unreadable image" in bad.embedding_error


def test_without_any_version_images_stay_pending(make_colour_post):
    post = make_colour_post(0, n_items=0)
    assert embed_images(kind="snapshot", ids=[post.pk])["embedded"] == 0
    post.refresh_from_db()
    assert post.embedding_status == EmbeddingStatus.PENDING


@pytest.mark.django_db(transaction=True)  # the HNSW index is built CONCURRENTLY, outside a transaction
def test_reindex_is_resumable_and_reports_progress(make_version, make_colour_post):
    make_version(activate=True)
    posts = [make_colour_post(i, n_items=1) for i in range(4)]
    new = make_version(mode="color")
    # a crash after the first two snapshots: those already have the new vectors
    embed_images(kind="snapshot", ids=[posts[0].pk, posts[1].pk], versions=[new])
    assert len(missing_ids(kind="snapshot", version=new)) == 2

    seen = []
    result = reindex(version=new, progress=lambda done, total, message: seen.append((done, total)))

    new.refresh_from_db()
    assert result["total"] == 2 + 4  # 2 snapshots left + 4 items
    assert seen[-1] == (6, 6)
    assert new.index_progress["done"] == 6 and new.index_progress["total"] == 6
    assert missing_ids(kind="snapshot", version=new) == [] and missing_ids(kind="item", version=new) == []
    # the re-indexed version has every snapshot's garments, as the serving one does
    assert SnapshotGarment.objects.filter(model_version=new).count() == 4
    from recommender.indexes import vector_index_names

    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [vector_index_names(model_version=new)])
        assert len(cursor.fetchall()) == 2


def test_sweep_enqueues_images_pending_past_the_grace_period(make_colour_post, django_capture_on_commit_callbacks):
    old = make_colour_post(0, n_items=1)
    fresh = make_colour_post(1, n_items=0)
    past = timezone.now() - timedelta(minutes=10)
    Snapshot.objects.filter(pk=old.pk).update(updated_at=past)
    Item.objects.filter(snapshots=old).update(updated_at=past)
    sent = []
    from workers.celery import app

    original = app.send_task
    app.send_task = lambda name, args=None, **kw: sent.append((name, args))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = sweep()
        with django_capture_on_commit_callbacks(execute=True):
            again = sweep()  # marked queued as they were sent: not enqueued twice
    finally:
        app.send_task = original
    assert result == {"snapshot": 1, "item": 1}
    assert again == {"snapshot": 0, "item": 0}
    assert ("workers.embed_snapshots", [[old.pk]]) in sent
    assert fresh.pk not in [i for _, args in sent for i in args[0]]


def test_rewriting_a_snapshot_replaces_its_regions(make_version, make_colour_post):
    from catalog.services.embeddings import snapshot_embeddings_write

    version = make_version()
    post = make_colour_post(0, n_items=0)
    three = np.eye(3, 8, dtype=np.float32)  # (regions, dim)
    assert snapshot_embeddings_write(model_version=version, vectors={post.pk: three}) == 3
    two = np.array([[0, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0], [0] * 8], dtype=np.float32)
    assert snapshot_embeddings_write(model_version=version, vectors={post.pk: two}) == 2  # zero region dropped
    assert vectors_of(version, "snapshot")[post.pk] == [list(two[0]), list(two[1])]
    # the garment scheme's padding (copies of row 0) is not stored
    padded = np.stack([two[0], two[1], two[0], two[0]])
    assert snapshot_embeddings_write(model_version=version, vectors={post.pk: padded}) == 2
    assert vectors_of(version, "snapshot")[post.pk] == [list(two[0]), list(two[1])]


def _garment(region: int, group: str = "tops", box=(0.1, 0.2, 0.6, 0.7)) -> dict:
    outline = [[[box[0], box[1]], [box[2], box[1]], [box[2], box[3]], [box[0], box[3]]]]
    return {"group": group, "box": list(box), "outline": outline, "confidence": 0.8, "area": 0.2, "region": region}


def test_garments_are_replaced_with_the_vectors_in_one_transaction_and_must_name_a_stored_row(
    make_version, make_colour_post
):
    from catalog.services.embeddings import snapshot_embeddings_write

    version, other = make_version(), make_version()
    post = make_colour_post(0, n_items=0)
    three = np.eye(3, 8, dtype=np.float32)
    snapshot_embeddings_write(
        model_version=version, vectors={post.pk: three}, garments={post.pk: [_garment(1), _garment(2, "shoes")]}
    )
    snapshot_embeddings_write(model_version=other, vectors={post.pk: three[:2]}, garments={post.pk: [_garment(1)]})
    stored = SnapshotGarment.objects.filter(snapshot=post, model_version=version).order_by("region")
    assert [(g.region, g.group) for g in stored] == [(1, "tops"), (2, "shoes")]
    assert stored[0].outline == _garment(1)["outline"]
    # a re-run with one garment fewer replaces them; the other version's garments stay
    snapshot_embeddings_write(model_version=version, vectors={post.pk: three[:2]}, garments={post.pk: [_garment(1)]})
    assert SnapshotGarment.objects.filter(snapshot=post, model_version=version).count() == 1
    assert SnapshotGarment.objects.filter(snapshot=post, model_version=other).count() == 1
    # written without garments (None), the garments are kept; with an empty list, removed
    snapshot_embeddings_write(model_version=version, vectors={post.pk: three[:2]})
    assert SnapshotGarment.objects.filter(snapshot=post, model_version=version).count() == 1
    # a garment naming a row that is not stored, or with a bad box, writes nothing at all
    before = vectors_of(version, "snapshot")[post.pk]
    for bad in (_garment(2), _garment(0), _garment(1, box=(0.5, 0.2, 0.4, 0.7)), {"group": "tops", "region": 1}):
        with pytest.raises(ValueError):
            snapshot_embeddings_write(model_version=version, vectors={post.pk: three[:2]}, garments={post.pk: [bad]})
    assert vectors_of(version, "snapshot")[post.pk] == before
    snapshot_embeddings_write(model_version=version, vectors={post.pk: three[:2]}, garments={post.pk: []})
    assert not SnapshotGarment.objects.filter(snapshot=post, model_version=version).exists()
    # the garments go with their version
    other.delete()
    assert not SnapshotGarment.objects.filter(snapshot=post).exists()
