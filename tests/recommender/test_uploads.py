"""Upload queries through a real broker and a real worker process (stand-in embed_query task)."""

from __future__ import annotations

import pytest

from recommender.selectors import item_list_for_snapshot, snapshot_list_for_item
from tests import factories as f
from tests.recommender.fake_embed_worker import known_vectors

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_uploaded_photos_are_answered_by_a_worker_and_not_stored(client, reco_catalog, query_worker):
    from catalog.models import Item, Snapshot

    counts = (Item.objects.count(), Snapshot.objects.count())

    look = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload("me.jpg")})
    piece = client.post(
        "/api/query", {"direction": "item_to_snapshots", "image": f.make_upload("bag.png", fmt="PNG"), "k": 4}
    )
    filtered = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload(), "style": "boho"})
    page = client.post("/search/", {"direction": "item_to_snapshots", "image": f.make_upload()})

    assert look.status_code == 200, look.content
    expected_items = item_list_for_snapshot(vectors=known_vectors("snapshot", 8, 2))
    assert [r["item"]["id"] for r in look.json()["items"]] == [m.item.pk for m in expected_items]
    assert look.json()["snapshots"] == []
    assert piece.status_code == 200
    expected_looks = snapshot_list_for_item(vectors=known_vectors("item", 8, 2), k=4)
    assert [r["snapshot"]["id"] for r in piece.json()["snapshots"]] == [m.snapshot.pk for m in expected_looks]
    boho = {i.pk for i in reco_catalog["items"][:8]}
    assert len(filtered.json()["items"]) == 6 and {r["item"]["id"] for r in filtered.json()["items"]} <= boho
    assert page.status_code == 200
    assert page.content.decode().count("data-snapshot-id=") == 6
    assert "data:image/jpeg;base64," in page.content.decode()  # the preview is inline, not a stored file
    assert (Item.objects.count(), Snapshot.objects.count()) == counts


def test_a_worker_that_answers_too_late_is_a_503(client, reco_catalog, query_worker, settings):
    settings.RECOMMENDER_QUERY_TIMEOUT_S = 0.001

    response = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload()})

    assert response.status_code == 503
    assert "took too long" in response.json()["message"]
