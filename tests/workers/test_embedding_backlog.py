"""An import's backlog on the embedding queue: the sweep repeats no work that is only waiting or running,
and a post saved in the admin is embedded ahead of the backlog. Real PostgreSQL, Redis and worker processes."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import EmbeddingStatus, Item, Snapshot
from catalog.services.embedding_queue import embeddings_enqueue
from tests import factories as f
from tests.workers.conftest import WORKER_ENV, wait_for
from workers.embedding import sweep
from workers.registry import EMBED_PRIORITIES, EMBEDDING

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

INTERACTIVE, BULK = EMBED_PRIORITIES["interactive"], EMBED_PRIORITIES["bulk"]


@pytest.fixture
def embedding_messages(broker_clean):
    """``embedding_messages()``: {priority step: [(task name, ids), ...] oldest first} waiting in the embedding
    queue; ``embedding_messages.lose()`` deletes them (a broker that lost its data)."""

    def lists(channel) -> dict[int, str]:
        return {step: channel._q_for_pri(EMBEDDING, step) for step in channel.priority_steps}

    def read() -> dict[int, list[tuple[str, list[int]]]]:
        with broker_clean.connection_for_write() as conn:
            channel = conn.default_channel
            raw_lists = {step: channel.client.lrange(key, 0, -1) for step, key in lists(channel).items()}
        out = {}
        for step, raw in raw_lists.items():
            for entry in reversed(raw):  # kombu LPUSHes: oldest last
                payload = json.loads(entry)
                body = json.loads(base64.b64decode(payload["body"]))  # [args, kwargs, embed]
                out.setdefault(step, []).append((payload["headers"]["task"], body[0][0]))
        return out

    def lose() -> None:
        with broker_clean.connection_for_write() as conn:
            conn.default_channel.client.delete(*lists(conn.default_channel).values())

    read.lose = lose
    return read


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("staff", "staff@example.com", "pw"))
    return client


def _backlog(make_colour_post, settings, count: int) -> list[int]:
    """``count`` imported snapshots, queued the way an importer queues them (bulk), one message each."""
    ids = [make_colour_post(n, n_items=0).pk for n in range(count)]
    settings.CATALOG_EMBED_BATCH_SIZE = 1
    embeddings_enqueue(snapshot_ids=ids, priority="bulk")
    return ids


def _embedded_per_run(worker) -> list[int]:
    """Images embedded by each task the worker ran, from its log (``workers.tasks._embed``'s line)."""
    return [int(n) for n in re.findall(r"embedded (\d+) (?:snapshot|item)s \(of", worker.log_path.read_text())]


def test_the_sweep_leaves_a_queued_image_alone_and_requeues_one_whose_message_was_lost(
    broker_clean, embedding_messages, make_colour_post, settings
):
    queued = make_colour_post(0, n_items=0)
    never_queued = make_colour_post(1, n_items=0)  # saved while the broker was down: no message went out
    embeddings_enqueue(snapshot_ids=[queued.pk])
    queued.refresh_from_db()
    assert queued.embedding_queued_at is not None
    assert embedding_messages() == {INTERACTIVE: [("workers.embed_snapshots", [queued.pk])]}

    past_grace = timezone.now() + timedelta(seconds=settings.WORKERS_SWEEP_GRACE_S + 1)
    assert sweep(now=past_grace) == {"snapshot": 1, "item": 0}
    assert embedding_messages() == {
        INTERACTIVE: [("workers.embed_snapshots", [queued.pk])],  # still waiting: not queued again
        BULK: [("workers.embed_snapshots", [never_queued.pk])],
    }
    assert sweep(now=past_grace) == {"snapshot": 0, "item": 0}  # both have a message out now

    embedding_messages.lose()
    lost = timezone.now() + timedelta(seconds=settings.WORKERS_REQUEUE_AFTER_S + 1)
    assert sweep(now=lost) == {"snapshot": 2, "item": 0}
    assert embedding_messages() == {BULK: [("workers.embed_snapshots", [queued.pk, never_queued.pk])]}
    soon = timezone.now() + timedelta(seconds=settings.WORKERS_SWEEP_GRACE_S + 1)
    assert sweep(now=soon) == {"snapshot": 0, "item": 0}  # queued again: marked again


def test_the_sweep_leaves_an_image_alone_while_a_worker_embeds_it(
    worker_factory, broker_clean, embedding_messages, make_version, make_colour_post
):
    make_version(activate=True)
    post = make_colour_post(0, n_items=0)
    embeddings_enqueue(snapshot_ids=[post.pk])
    long_ago = timezone.now() - timedelta(hours=2)  # it waited in a backlog longer than WORKERS_REQUEUE_AFTER_S
    Snapshot.objects.filter(pk=post.pk).update(embedding_queued_at=long_ago, updated_at=long_ago)
    worker = worker_factory(
        queues=EMBEDDING,
        name=f"embedder-{uuid.uuid4().hex[:6]}",
        extra_env={**WORKER_ENV, "FAKE_ML_EMBED_DELAY_S": "3"},
    )

    wait_for(lambda: Snapshot.objects.get(pk=post.pk).embedding_queued_at > long_ago, message="the worker started")
    assert sweep() == {"snapshot": 0, "item": 0}
    assert Snapshot.objects.get(pk=post.pk).embedding_status == EmbeddingStatus.PENDING  # so it ran during the sweep
    assert embedding_messages() == {}

    wait_for(lambda: Snapshot.objects.get(pk=post.pk).embedding_status == EmbeddingStatus.READY, message="embedded")
    assert _embedded_per_run(worker) == [1]


def test_a_backlog_drained_under_a_sweep_every_half_second_embeds_each_image_once(
    worker_factory, broker_clean, make_version, make_colour_post, settings
):
    make_version(activate=True)
    settings.WORKERS_SWEEP_GRACE_S = 1  # every image of the backlog is past its grace almost at once
    backlog = _backlog(make_colour_post, settings, 30)
    worker = worker_factory(
        queues=EMBEDDING,
        name=f"embedder-{uuid.uuid4().hex[:6]}",
        extra_env={**WORKER_ENV, "FAKE_ML_EMBED_DELAY_S": "0.2"},
    )

    requeued = 0
    deadline = time.monotonic() + 120
    while Snapshot.objects.filter(pk__in=backlog, embedding_status=EmbeddingStatus.PENDING).exists():
        assert time.monotonic() < deadline, "the backlog did not drain in 120 s"
        requeued += sum(sweep().values())
        time.sleep(0.5)

    runs = _embedded_per_run(worker)
    repeats = sum(runs) - len(backlog)
    assert requeued == 0 and repeats == 0, f"{requeued} re-queued, {repeats} repeated embeddings of {len(backlog)}"


def test_a_post_saved_in_the_admin_is_embedded_ahead_of_an_import_backlog(
    worker_factory, broker_clean, embedding_messages, make_version, make_colour_post, settings, staff_client
):
    make_version(activate=True)
    backlog = _backlog(make_colour_post, settings, 60)
    assert len(embedding_messages()[BULK]) == 60
    worker_factory(
        queues=EMBEDDING,
        name=f"embedder-{uuid.uuid4().hex[:6]}",
        extra_env={**WORKER_ENV, "FAKE_ML_EMBED_DELAY_S": "0.3"},
    )
    wait_for(
        lambda: Snapshot.objects.filter(pk__in=backlog, embedding_status=EmbeddingStatus.READY).count() >= 3,
        message="the backlog draining",
    )

    response = staff_client.post(
        reverse("admin:catalog_snapshot_add"),
        {
            "title": "Saved during an import",
            "person_name": "",
            "person_age": "",
            "person_occupation": "",
            "is_published": "on",
            "source_url": "",
            "image": f.make_upload("look.png", fmt="PNG", size=(300, 450)),
            **f.post_items_formset([{"new_image": f.make_upload("coat.jpg")}]),
        },
    )
    saved = time.monotonic()
    assert response.status_code == 302, response.context["errors"] if response.context else response
    post = Snapshot.objects.get(title="Saved during an import")
    item = Item.objects.get(post_items__snapshot=post)

    def embedded() -> bool:
        return (
            Snapshot.objects.get(pk=post.pk).embedding_status
            == Item.objects.get(pk=item.pk).embedding_status
            == "ready"
        )

    wait_for(embedded, timeout=60, interval=0.1, message="the admin post embedded")
    seconds = time.monotonic() - saved
    waiting = Snapshot.objects.filter(pk__in=backlog, embedding_status=EmbeddingStatus.PENDING).count()
    # ahead of the backlog: only the batch running as it was saved (and a few more) went first
    assert waiting >= len(backlog) // 2, (
        f"the post waited behind {len(backlog) - waiting} of {len(backlog)} bulk batches"
    )
    assert seconds < 60


def test_a_second_message_for_an_embedded_image_costs_no_model_call(make_version, make_colour_post):
    from recommender.models import IndexState
    from recommender.versions import version_index_state_set
    from tests.workers.conftest import vectors_of
    from workers.tasks import embed_snapshots

    active = make_version(activate=True)
    post = make_colour_post(0, n_items=0)
    assert embed_snapshots([post.pk])["embedded"] == 1
    again = embed_snapshots([post.pk])  # the sweep took the first message as lost and sent another
    assert (again["embedded"], again["skipped"]) == (0, 1)

    reindexed = make_version(mode="color")
    version_index_state_set(version=reindexed, state=IndexState.INDEXING)
    for_both = embed_snapshots([post.pk])  # it lacks the re-indexed version's vectors: not skipped
    assert (for_both["embedded"], for_both["skipped"]) == (1, 0)
    assert list(vectors_of(reindexed, "snapshot")) == list(vectors_of(active, "snapshot")) == [post.pk]
