"""A staff post saved while the broker is down is kept (pending), and the sweep queues it once the broker is back."""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import EmbeddingStatus, Item, Snapshot
from tests import factories as f
from tests.spare_redis import celery_pointed_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("staff", "staff@example.com", "pw"))
    return client


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_post_saved_while_the_broker_is_down_is_kept_and_the_sweep_queues_it_when_it_returns(
    staff_client, django_capture_on_commit_callbacks, queued_messages, settings
):
    from workers.embedding import sweep

    data = {
        "title": "Saved in an outage",
        "person_name": "",
        "is_published": "on",
        "source_url": "",
        "image": f.make_upload("look.png", fmt="PNG", size=(300, 450)),
        **f.post_items_formset([{"new_image": f.make_upload("coat.jpg")}]),
    }
    with celery_pointed_at(f"redis://127.0.0.1:{_closed_port()}/0"):
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = staff_client.post(reverse("admin:catalog_snapshot_add"), data)
        seconds = time.monotonic() - started

    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert len(callbacks) == 2  # the snapshot's and the new item's embedding requests, both failed to send
    assert seconds < 5, f"the save waited {seconds:.1f}s on the dead broker"
    snapshot, item = Snapshot.objects.get(), Item.objects.get()
    assert snapshot.title == "Saved in an outage" and snapshot.image.storage.exists(snapshot.image.name)
    assert (snapshot.embedding_status, item.embedding_status) == (EmbeddingStatus.PENDING, EmbeddingStatus.PENDING)
    assert queued_messages() == []  # nothing reached the (real) broker

    later = timezone.now() + timedelta(seconds=settings.WORKERS_SWEEP_GRACE_S + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep(now=later) == {"item": 1, "snapshot": 1}
    assert sorted(queued_messages()) == [("workers.embed_items", [item.pk]), ("workers.embed_snapshots", [snapshot.pk])]
