"""Shopper pages: browse grids, detail pages with live recommendations, upload errors."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def ids_in(html: str, kind: str) -> list[int]:
    return [int(x) for x in re.findall(rf'data-{kind}-id="(\d+)"', html)]


def recommendations_block(html: str) -> str:
    return html.split('id="recommendations"', 1)[1]


def test_home_is_the_snapshot_tab_with_filters_upload_and_pagination(client, reco_catalog, settings):
    settings.CATALOG_PAGE_SIZE = 4

    response = client.get("/")
    page3 = client.get("/", {"page": 3})
    boho = client.get("/", {"style": "boho"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="tab is-active"' in html and "Snapshot → items" in html and "Item → snapshots" in html
    assert len(ids_in(html, "snapshot")) == 4
    assert 'name="direction" value="snapshot_to_items"' in html
    assert 'loading="lazy"' in html
    assert "Page 1 of 3" in html
    assert len(ids_in(page3.content.decode(), "snapshot")) == 2
    assert "Page 1 of 2" in boho.content.decode()


def test_item_tab_filters_by_parent_category(client, reco_catalog):
    response = client.get("/items/", {"category": "tops"})

    html = response.content.decode()
    assert response.status_code == 200
    assert sorted(ids_in(html, "item")) == sorted(i.pk for i in reco_catalog["items"][8:16])
    assert 'value="item_to_snapshots"' in html


def test_unknown_filter_is_ignored_with_a_notice(client, reco_catalog):
    html = client.get("/items/", {"style": "nope"}).content.decode()
    assert "Ignored an unknown style: nope" in html
    assert len(ids_in(html, "item")) == 24


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
def test_a_nul_byte_in_a_filter_is_a_400_page(client, reco_catalog, settings, debug):
    settings.DEBUG = debug
    look = reco_catalog["looks"][0]

    for url in ["/", "/items/", f"/snapshots/{look.pk}/", f"/snapshots/{look.pk}/recommendations/"]:
        response = client.get(url, {"style": "boho", "category": "a\x00b"})
        assert response.status_code == 400, url
        assert response["Content-Type"].startswith("text/html")
        assert "parameter &#x27;category&#x27; contains a NUL byte" in response.content.decode()


def test_a_filter_that_cannot_be_a_slug_is_dropped_and_the_page_is_a_400(client, reco_catalog):
    response = client.get("/items/", {"style": "boho", "category": "Tops & more"})
    fragment = client.get(f"/items/{reco_catalog['items'][0].pk}/recommendations/", {"brand": "x" * 200})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Ignored an invalid category: a slug has only letters" in html
    assert sorted(ids_in(html, "item")) == sorted(i.pk for i in reco_catalog["items"][:8])  # boho still applies
    assert fragment.status_code == 400


def test_an_upload_with_an_invalid_filter_is_refused(client, reco_catalog, django_assert_num_queries):
    from tests import factories as f

    with django_assert_num_queries(0):
        response = client.post("/search/", {"direction": "snapshot_to_items", "image": f.make_upload(), "brand": "a b"})

    assert response.status_code == 400
    assert "Ignored an invalid brand" in response.content.decode()


def test_snapshot_page_shows_metadata_curated_items_and_six_recommendations(client, reco_catalog, catalog_rows):
    from catalog.models import PostItem, Tag

    look = reco_catalog["looks"][0]
    curated = catalog_rows.items(2, name="Curated")
    PostItem.objects.bulk_create([PostItem(snapshot=look, item=item, position=n) for n, item in enumerate(curated)])
    look.tags.add(Tag.objects.create(name="summer", slug="summer"))
    look.person_name = "Ada"
    look.save()

    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/snapshots/{look.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ada" in html and "summer" in html and "Boho" in html
    curated_html = html.split('id="curated"', 1)[1].split("</ul>", 1)[0]
    assert ids_in(curated_html, "item") == [item.pk for item in curated]
    assert len(ids_in(recommendations_block(html), "item")) == 6
    # snapshot + 4 prefetches, 3 filter option lists, active version, the look's garments (none here),
    # SAVEPOINT, set_config, search (which also reads the items with their brands and categories), RELEASE:
    # 14 (the savepoint pair is the test's transaction; in production it is BEGIN/COMMIT).
    assert len(queries) == 14, [q["sql"][:80] for q in queries]


def test_snapshot_page_query_count_does_not_grow_with_results(client, reco_catalog, django_assert_num_queries):
    look = reco_catalog["looks"][1]
    with django_assert_num_queries(16):  # the 14 above + resolving the style slug + counting the filtered rows
        response = client.get(f"/snapshots/{look.pk}/", {"style": "street", "k": 6})
    assert len(ids_in(recommendations_block(response.content.decode()), "item")) == 6


def test_the_filter_fragment_reranks_the_recommendations(client, reco_catalog):
    look = reco_catalog["looks"][0]

    unfiltered = client.get(f"/snapshots/{look.pk}/recommendations/").content.decode()
    boho = client.get(f"/snapshots/{look.pk}/recommendations/", {"style": "boho"}).content.decode()
    acme = client.get(f"/snapshots/{look.pk}/", {"brand": "acme"}).content.decode()  # the no-JS path

    boho_ids = {i.pk for i in reco_catalog["items"][:8]}
    acme_ids = {i.pk for i in reco_catalog["items"][16:]}
    assert "<html" not in boho  # a fragment
    assert len(ids_in(unfiltered, "item")) == 6
    assert set(ids_in(boho, "item")) <= boho_ids and len(ids_in(boho, "item")) == 6
    assert set(ids_in(recommendations_block(acme), "item")) <= acme_ids


def test_item_page_shows_six_looks_that_link_onward(client, reco_catalog):
    item = reco_catalog["items"][3]

    html = client.get(f"/items/{item.pk}/").content.decode()

    looks = ids_in(recommendations_block(html), "snapshot")
    assert len(looks) == 6
    assert f'href="/snapshots/{looks[0]}/"' in html


def test_pages_say_politely_when_there_is_no_model_or_no_vectors(client, reco_catalog, catalog_rows):
    fresh = catalog_rows.snapshots(1)[0]
    not_embedded = client.get(f"/snapshots/{fresh.pk}/")
    reco_catalog["version"].status = "retired"
    reco_catalog["version"].save()
    no_model = client.get(f"/items/{reco_catalog['items'][0].pk}/")

    assert not_embedded.status_code == 200 and "has not been analysed yet" in not_embedded.content.decode()
    assert no_model.status_code == 200 and "No recommendation model is active" in no_model.content.decode()


def test_unknown_or_unpublished_pages_are_404(client, reco_catalog, catalog_rows):
    hidden = catalog_rows.snapshots(1, is_published=False)[0]
    assert client.get("/snapshots/999999/").status_code == 404
    assert client.get(f"/snapshots/{hidden.pk}/").status_code == 404
    assert client.get("/items/999999/recommendations/").status_code == 404


def test_upload_page_errors(client, reco_catalog):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad_file = client.post(
        "/search/", {"direction": "snapshot_to_items", "image": SimpleUploadedFile("x.png", b"nope")}
    )
    no_file = client.post("/search/", {"direction": "item_to_snapshots"})

    assert bad_file.status_code == 400 and "x.png" in bad_file.content.decode()
    assert no_file.status_code == 400 and "Choose a photo" in no_file.content.decode()
    assert client.get("/search/").status_code == 302


def test_upload_without_a_worker_asks_to_try_again(client, reco_catalog, celery_app_purged):
    from tests import factories as f

    response = client.post("/search/", {"direction": "snapshot_to_items", "image": f.make_upload()})

    assert response.status_code == 503
    assert "Please try again" in response.content.decode()


@pytest.mark.django_db
def test_a_nul_byte_in_a_form_field_is_a_400_outside_the_api(client, admin_client):
    # a form that keeps NUL away from the database only if its field is Django's CharField: the guard
    # refuses it first, whatever the form (here the admin's periodic-task form of django-celery-beat)
    for body in [{"name": "x", "task": "a\x00b"}, "name=x&task=a%00b"]:  # multipart, then form-encoded
        kwargs = {} if isinstance(body, dict) else {"content_type": "application/x-www-form-urlencoded"}
        response = admin_client.post("/admin/django_celery_beat/periodictask/add/", body, **kwargs)
        assert response.status_code == 400
        assert "form field &#x27;task&#x27; contains a NUL byte" in response.content.decode()
    login = client.post("/admin/login/", {"username": "a\x00", "password": "b"})
    assert login.status_code == 400
    # the API parses its own bodies and answers in its JSON format
    api = client.post("/api/query", "image=a%00b", content_type="application/x-www-form-urlencoded")
    assert api["Content-Type"].startswith("application/json") and api.status_code < 500
