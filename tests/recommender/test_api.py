"""The JSON API: status codes and bodies for good and bad input."""

from __future__ import annotations

import re

import pytest

from catalog.models import Item

pytestmark = pytest.mark.django_db


def test_items_for_a_snapshot(client, reco_catalog):
    look = reco_catalog["looks"][0]

    response = client.get(f"/api/snapshots/{look.pk}/items")

    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == reco_catalog["version"].pk
    assert len(body["results"]) == 6
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    first = body["results"][0]["item"]
    assert first["url"] == f"/items/{first['id']}/"
    assert first["image"].endswith(".jpg")


def test_filters_apply_and_a_parent_category_includes_its_children(client, reco_catalog):
    look = reco_catalog["looks"][0]

    boho = client.get(f"/api/snapshots/{look.pk}/items", {"style": "boho", "k": 5}).json()
    tops = client.get(f"/api/snapshots/{look.pk}/items", {"category": "tops"}).json()
    both = client.get(f"/api/snapshots/{look.pk}/items", {"style": ["boho", "street"], "brand": "acme"}).json()

    assert len(boho["results"]) == 5
    assert boho["filters"]["style"] == ["boho"]
    assert set(
        Item.objects.filter(pk__in=[r["item"]["id"] for r in boho["results"]]).values_list("styles__slug", flat=True)
    ) == {"boho"}
    assert len(tops["results"]) == 6
    assert {r["item"]["category"] for r in tops["results"]} == {"shirts"}
    assert {r["item"]["brand"] for r in both["results"]} == {"acme"}
    assert len(both["results"]) == 6


def test_snapshots_for_an_item(client, reco_catalog):
    item = reco_catalog["items"][0]

    body = client.get(f"/api/items/{item.pk}/snapshots", {"k": 4, "style": "street"}).json()

    assert len(body["results"]) == 4
    street_ids = {look.pk for look in reco_catalog["looks"][6:]}
    assert {r["snapshot"]["id"] for r in body["results"]} == street_ids


@pytest.mark.parametrize(
    ("url", "params", "status", "message"),
    [
        ("/api/snapshots/999999/items", {}, 404, "No Snapshot matches"),
        ("/api/items/999999/snapshots", {}, 404, "No Item matches"),
        ("/api/snapshots/{look}/items", {"k": 0}, 422, "Invalid request parameters"),
        ("/api/snapshots/{look}/items", {"k": 1000}, 422, "Invalid request parameters"),
        ("/api/snapshots/{look}/items", {"k": "six"}, 422, "Invalid request parameters"),
        ("/api/snapshots/{look}/items", {"style": "nope"}, 422, "unknown style: nope"),
        ("/api/items/{item}/snapshots", {"category": "nope"}, 422, "unknown category: nope"),
        ("/api/snapshots", {"page": 99}, 404, "Page 99 does not exist"),
        ("/api/items", {"page_size": 0}, 422, "Invalid request parameters"),
        ("/api/items", {"style": "a\x00b"}, 400, "parameter 'style' contains a NUL byte"),
        ("/api/snapshots/{look}/items", {"brand": "\x00"}, 400, "contains a NUL byte"),
        ("/api/items/{item}/snapshots", {"k": "6\x00"}, 400, "contains a NUL byte"),
        ("/api/items", {"category": "Tops & more"}, 422, "invalid category: a slug has only letters"),
        ("/api/items", {"brand": "x" * 121}, 422, "at most 120 characters"),
        ("/api/snapshots", {"page": "9" * 40}, 404, "does not exist"),
        ("/api/snapshots/{look}/items", {"k": "9" * 5000}, 422, "Invalid request parameters"),
        ("/api/snapshots/" + "9" * 40 + "/items", {}, 404, "No Snapshot matches"),
    ],
)
def test_bad_requests_get_json_errors(client, reco_catalog, url, params, status, message):
    url = url.format(look=reco_catalog["looks"][0].pk, item=reco_catalog["items"][0].pk)

    response = client.get(url, params)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert message in response.json()["message"]


def test_no_active_model_or_missing_vectors_is_a_503(client, reco_catalog, catalog_rows):
    fresh = catalog_rows.snapshots(1)[0]
    response = client.get(f"/api/snapshots/{fresh.pk}/items")
    assert response.status_code == 503
    assert "not been analysed" in response.json()["message"]

    reco_catalog["version"].status = "retired"
    reco_catalog["version"].save()
    response = client.get(f"/api/snapshots/{reco_catalog['looks'][0].pk}/items")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "No recommendation model is active" in response.json()["message"]


def test_list_endpoints_paginate_and_filter(client, reco_catalog):
    page = client.get("/api/items", {"page_size": 5, "page": 2, "brand": "acme"}).json()
    looks = client.get("/api/snapshots", {"style": "boho"}).json()

    assert (page["count"], page["pages"], page["page"], len(page["results"])) == (8, 2, 2, 3)
    assert {r["brand"] for r in page["results"]} == {"acme"}
    assert looks["count"] == 6
    assert {r["id"] for r in looks["results"]} == {look.pk for look in reco_catalog["looks"][:6]}


def test_openapi_schema_and_docs_are_served(client, db):
    schema = client.get("/api/openapi.json")
    docs = client.get("/api/docs")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/snapshots/{snapshot_id}/items",
        "/api/items/{item_id}/snapshots",
        "/api/query",
        "/api/items",
        "/api/snapshots",
    } <= set(paths)
    assert docs.status_code == 200


def test_upload_query_rejects_bad_input(client, reco_catalog, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests import factories as f

    bad_direction = client.post("/api/query", {"direction": "sideways", "image": f.make_upload()})
    no_image = client.post("/api/query", {"direction": "snapshot_to_items"})
    not_an_image = client.post(
        "/api/query", {"direction": "snapshot_to_items", "image": SimpleUploadedFile("x.jpg", b"not a picture")}
    )
    settings.CATALOG_MAX_UPLOAD_BYTES = 200
    too_big = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload()})

    assert bad_direction.status_code == 422 and "direction must be one of" in bad_direction.json()["message"]
    assert no_image.status_code == 422
    assert not_an_image.status_code == 400 and "x.jpg" in not_an_image.json()["message"]
    assert too_big.status_code == 413
    assert re.fullmatch(r"The image is [\d.]+ KiB; the limit is 200 bytes\.", too_big.json()["message"])


def test_upload_query_checks_its_filter_fields_before_the_database(client, reco_catalog, django_assert_num_queries):
    from tests import factories as f

    with django_assert_num_queries(0):
        response = client.post(
            "/api/query", {"direction": "snapshot_to_items", "image": f.make_upload(), "style": "boho\x00"}
        )

    assert response.status_code == 422
    assert response.json()["detail"] == {"kind": "style", "value": "boho\x00", "max_length": 80}


BOUNDARY = "b0undary"
_PART = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="direction"\r\n\r\nsnapshot_to_items\r\n'
_FILE = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{{name}}"\r\n\r\n\x89PNG\r\n'
_END = f"--{BOUNDARY}--\r\n"


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        ("multipart/form-data", _PART + _END, 400, "could not be read as a form"),
        (f"multipart/form-data; boundary={BOUNDARY}", "\xff garbage, no parts at all" * 20, 422, "Invalid request"),
        ("multipart/form-data; boundary=" + "b" * 300, _PART + _END, 400, "could not be read as a form"),
        (f"multipart/form-data; boundary={BOUNDARY}", (_PART + _FILE + _END)[:60], 422, "Invalid request"),
        (
            f"multipart/form-data; boundary={BOUNDARY}",
            _PART + _FILE.format(name="x" * 5000) + _END,
            400,
            "could not be read",
        ),
        (f"multipart/form-data; boundary={BOUNDARY}", _PART * 1001 + _END, 400, "too many form fields"),
        (f"multipart/form-data; boundary={BOUNDARY}", _PART + _FILE.format(name="p.png") * 101 + _END, 400, "files"),
    ],
    ids=["no boundary", "garbage body", "over-long boundary", "truncated", "5000-char filename", "fields", "files"],
)
def test_malformed_multipart_gets_the_json_error(client, db, settings, debug, content_type, body, status, message):
    settings.DEBUG = debug

    response = client.generic("POST", "/api/query", body.encode("utf-8", "surrogateescape"), content_type=content_type)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert message in response.json()["message"]


def test_form_fields_over_the_body_limit_are_a_json_413(client, db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = _PART.replace("snapshot_to_items", "x" * 2000) + _END

    response = client.generic(
        "POST", "/api/query", body.encode(), content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )

    assert response.status_code == 413
    assert response.json()["message"] == "The form fields are larger than 1 KiB."


def test_upload_query_without_a_worker_is_a_503(client, reco_catalog, celery_app_purged):
    from tests import factories as f

    response = client.post("/api/query", {"direction": "item_to_snapshots", "image": f.make_upload()})

    assert response.status_code == 503
    assert "try again" in response.json()["message"].lower()


@pytest.fixture
def api_look(catalog_rows, rng):
    """The look of tests/recommender/test_pieces.py: three garments over tops, trousers and shoes items."""
    from tests.recommender.conftest import three_garment_look

    return three_garment_look(catalog_rows, rng)


def test_garments_picks_and_one_piece_through_the_api(client, api_look):
    from recommender.selectors.similarity.pieces import item_list_for_garment, look_picks

    snapshot = api_look["snapshot"]
    detail = client.get(f"/api/snapshots/{snapshot.pk}").json()
    assert [(g["number"], g["group"], g["name"]) for g in detail["garments"]] == [
        (1, "tops", "Top"),
        (2, "trousers", "Trousers"),
        (3, "shoes", "Shoes"),
    ]
    assert detail["garments"][0]["box"] == [0.2, 0.1, 0.8, 0.45] and detail["garments"][0]["outline"]

    body = client.get(f"/api/snapshots/{snapshot.pk}/items").json()
    _, picks = look_picks(snapshot_id=snapshot.pk)
    assert [(p["garment"], p["item"]["id"]) for p in body["picks"]] == [
        (p.garment.number, p.match.item.pk) for p in picks
    ]
    assert len(body["garments"]) == 3 and body["garment"] is None and len(body["results"]) == 6

    piece = client.get(f"/api/snapshots/{snapshot.pk}/items", {"garment": 2, "k": 4}).json()
    _, expected = item_list_for_garment(snapshot_id=snapshot.pk, garment_number=2, k=4)
    assert piece["garment"] == 2 and piece["picks"] == [] and [g["number"] for g in piece["garments"]] == [2]
    assert [r["item"]["id"] for r in piece["results"]] == [m.item.pk for m in expected]
    assert {r["garment"] for r in piece["results"]} == {2}

    shoe = api_look["items"]["shoes"][0]
    looks = client.get(f"/api/items/{shoe.pk}/snapshots").json()["results"]
    matched = next(r for r in looks if r["snapshot"]["id"] == snapshot.pk)
    assert matched["garment"]["group"] in {"tops", "trousers", "shoes"}


@pytest.mark.parametrize(
    ("params", "status"),
    [({"garment": 4}, 404), ({"garment": 0}, 422), ({"garment": "abc"}, 422), ({"garment": "1\x00"}, 400)],
)
def test_a_garment_the_look_does_not_have_is_a_clear_4xx(client, api_look, params, status):
    response = client.get(f"/api/snapshots/{api_look['snapshot'].pk}/items", params)
    assert response.status_code == status, response.content
    assert response.json()["message"]


def test_another_looks_garment_number_is_a_404_and_a_look_without_garments_answers_the_whole_photo(
    client, api_look, catalog_rows
):
    bare = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(api_look["version"], bare, api_look["regions"][:1])
    assert client.get(f"/api/snapshots/{bare.pk}/items", {"garment": 1}).status_code == 404
    body = client.get(f"/api/snapshots/{bare.pk}/items").json()
    assert body["garments"] == [] and body["picks"] == [] and len(body["results"]) == 6
    assert client.get(f"/api/snapshots/{bare.pk}").json()["garments"] == []
    assert client.get("/api/snapshots/999999").status_code == 404
