"""Upload queries through a real broker and a real worker process (stand-in embed_query task)."""

from __future__ import annotations

import pytest

from recommender.selectors import Filters, item_list_for_snapshot, nearest_ids, snapshot_list_for_item
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
    # one result shape with GET /snapshots/{id}/items and GET /items/{id}/snapshots: "results"
    assert [r["item"]["id"] for r in look.json()["results"]] == [m.item.pk for m in expected_items]
    assert look.json()["direction"] == "snapshot_to_items" and "picks" in look.json() and "garments" in look.json()
    assert piece.status_code == 200
    expected_looks = snapshot_list_for_item(vectors=known_vectors("item", 8, 2), k=4)
    assert [r["snapshot"]["id"] for r in piece.json()["results"]] == [m.snapshot.pk for m in expected_looks]
    boho = {i.pk for i in reco_catalog["items"][:8]}
    assert len(filtered.json()["results"]) == 6 and {r["item"]["id"] for r in filtered.json()["results"]} <= boho
    assert page.status_code == 200
    assert page.content.decode().count("data-snapshot-id=") == 6
    assert "data:image/jpeg;base64," in page.content.decode()  # the preview is inline, not a stored file
    assert (Item.objects.count(), Snapshot.objects.count()) == counts


def test_a_worker_that_answers_too_late_is_a_503(client, reco_catalog, query_worker, settings):
    settings.RECOMMENDER_QUERY_TIMEOUT_S = 0.001

    response = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload()})

    assert response.status_code == 503
    assert "took too long" in response.json()["message"]


def test_a_box_searches_only_that_piece_and_a_bad_box_or_group_is_a_422(client, reco_catalog, query_worker):
    def ask(**fields):
        return client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload(), **fields})

    boxed = ask(box="0.1,0.2,0.6,0.9", k=4)
    assert boxed.status_code == 200, boxed.content
    body = boxed.json()
    assert body["box"] == [0.1, 0.2, 0.6, 0.9] and body["picks"] == [] and body["group"] is None
    # the box is described as a product photo (the worker's item answer) and searched over every item
    expected = nearest_ids(
        kind="item",
        model_version=reco_catalog["version"],
        k=4,
        filters=Filters(),
        query_vectors=known_vectors("item", 8, 2),
    )
    assert [r["item"]["id"] for r in body["results"]] == [i for i, _ in expected]
    for bad in (
        "0.5,0.2,0.1,0.9",
        "0,0,0,0",
        "0.1,0.2,0.6",
        "a,b,c,d",
        "0.1,0.2,1.5,0.9",
        "0.1,0.1,0.105,0.9",
        "nan,0,1,1",
    ):
        response = ask(box=bad)
        assert response.status_code == 422, (bad, response.content)
        assert response.json()["message"]
    assert ask(box="0.1,0.2,0.6,0.9", group="spaceship").status_code == 422
    piece = client.post(
        "/api/query", {"direction": "item_to_snapshots", "image": f.make_upload(), "box": "0.1,0.2,0.6,0.9"}
    )
    assert piece.status_code == 422 and "street photo" in piece.json()["message"]
