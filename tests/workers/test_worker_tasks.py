"""Tasks through the real broker to real worker processes: queries, embedding, bootstrap."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from catalog.models import Snapshot
from recommender.models import ModelVersion
from recommender.wire import garments_decode, vectors_decode
from tests.workers.conftest import WORKER_ENV, color_image, expected_vectors, vectors_of, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_upload_queries_are_answered_on_their_own_queue(worker_factory, broker_clean, make_version):
    from workers.ml_runtime import BadImage
    from workers.tasks import embed_query

    version = make_version(activate=True)
    worker_factory(queues="queries", name="queries", extra_env=WORKER_ENV)
    image_b64 = base64.b64encode(color_image((10, 200, 10))).decode()

    snapshot_answer = embed_query.delay(image_b64, "snapshot").get(timeout=30)
    item_answer = embed_query.delay(image_b64, "item").get(timeout=30)
    snapshot_version, snapshot = vectors_decode(snapshot_answer)
    item_version, item = vectors_decode(item_answer)
    # a snapshot answer carries the garments found on the photo, each naming its row; an item's none
    garments = garments_decode(snapshot_answer, rows=len(snapshot))
    assert [(g["group"], g["region"], g["box"]) for g in garments] == [("tops", 1, [0.0, 0.0, 1.0, 0.5])]
    assert garments_decode(item_answer, rows=1) == []

    assert snapshot_version == item_version == version.pk
    # every region in order (the web side picks its query regions): region 0, the top half, and an
    # empty window of this small test model left as a zero row; one item vector
    assert snapshot.shape == (3, 8) and item.shape == (1, 8)
    assert np.count_nonzero(np.linalg.norm(snapshot, axis=1)) == 2
    assert snapshot.dtype == item.dtype == np.float32
    assert np.isclose(np.linalg.norm(item[0]), 1.0, atol=1e-5)
    with pytest.raises(BadImage, match="unreadable image"):
        embed_query.delay(base64.b64encode(b"not an image").decode(), "item").get(timeout=30)
    with pytest.raises(ValueError, match="kind must be"):
        embed_query.delay(image_b64, "shoe").get(timeout=30)


def test_the_catalog_sends_embedding_by_name_and_a_worker_embeds(
    worker_factory, broker_clean, make_version, make_colour_post
):
    from catalog.services.embedding_queue import embeddings_enqueue

    version = make_version(activate=True)
    post = make_colour_post(0, n_items=2)
    item_ids = list(post.items.values_list("pk", flat=True))
    worker_factory(queues="embedding", name="embedder", extra_env=WORKER_ENV)

    embeddings_enqueue(item_ids=item_ids, snapshot_ids=[post.pk])

    wait_for(lambda: len(vectors_of(version, "item")) == 2 and vectors_of(version, "snapshot"), message="vectors")
    got = vectors_of(version, "snapshot")[post.pk]
    want = expected_vectors(version, post.image.path, "snapshot")
    assert np.allclose(got, want, atol=1e-6)
    wait_for(lambda: Snapshot.objects.get(pk=post.pk).embedding_status == "ready", message="status ready")


def test_a_fresh_install_builds_the_shipped_trained_model_at_worker_start(
    worker_factory, broker_clean, make_colour_post
):
    post = make_colour_post(0, n_items=1)
    assert not ModelVersion.objects.exists()
    worker_factory(
        queues="default,embedding,training",
        name="fresh",
        extra_env={**WORKER_ENV, "WORKERS_BOOTSTRAP_ON_START": "1"},
    )

    version = wait_for(lambda: ModelVersion.objects.active().first(), message="an active version")
    assert not version.is_pretrained_only and version.name.startswith("shipped-fake-trained-")
    assert version.training_counts == {"posts": 600}
    assert version.artifact_checksum and version.dim == 8
    wait_for(lambda: Snapshot.objects.get(pk=post.pk).embedding_status == "ready", message="existing post embedded")
    assert list(vectors_of(version, "snapshot")) == [post.pk]
    # the post can be ready before the bootstrap's index build is marked done: wait for that mark
    wait_for(lambda: ModelVersion.objects.get(pk=version.pk).index_state == "complete", message="index complete")
    version.refresh_from_db()
    assert version.index_state == "complete"
    from workers.models import Job

    wait_for(lambda: Job.objects.get(kind="bootstrap").status not in ("queued", "running"), message="bootstrap ended")
    assert Job.objects.get(kind="bootstrap").status == "succeeded"
