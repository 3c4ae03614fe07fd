"""The staff admin through the test client: one-page post upload with inline items, validation, lists, actions."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from catalog.models import EmbeddingStatus, Item, PostItem, Snapshot
from tests import factories as f

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:catalog_snapshot_add")


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


def _post_data(**overrides) -> dict:
    data = {"title": "Street look", "person_name": "Mia", "person_age": "27", "is_published": "on", "source_url": ""}
    data.update(overrides)
    return data


def test_staff_creates_a_post_with_new_and_existing_items_in_one_page(
    staff_client, django_capture_on_commit_callbacks, queued_messages
):
    existing = f.make_item("Leather bag")
    style, brand = f.make_style("Minimal"), f.make_brand("Acme")
    category = f.make_category("Coats")
    data = _post_data(image=f.make_upload("look.png", fmt="PNG", size=(300, 450)), styles=[style.pk], brands=[brand.pk])
    data.update(
        f.post_items_formset(
            [
                {"item": existing.pk},
                {
                    "new_image": f.make_upload("red_coat.jpg"),
                    "new_category": category.pk,
                    "new_brand": brand.pk,
                    "new_price": "89.50",
                },
                {},  # an untouched extra form is ignored
            ]
        )
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_client.post(ADD_URL, data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    snapshot = Snapshot.objects.get()
    assert response["Location"] == reverse("admin:catalog_snapshot_changelist")
    assert (snapshot.title, snapshot.person_name, snapshot.person_age) == ("Street look", "Mia", 27)
    assert (snapshot.width, snapshot.height) == (300, 450)
    assert list(snapshot.styles.all()) == [style] and list(snapshot.brands.all()) == [brand]
    names = [pi.item.name for pi in snapshot.post_items.select_related("item")]
    assert names == ["Leather bag", "red coat"]
    coat = Item.objects.get(name="red coat")
    assert (coat.category, coat.brand, str(coat.price)) == (category, brand, "89.50")
    assert len(callbacks) == 2
    assert queued_messages("embedding") == [
        ("workers.embed_items", [coat.pk]),
        ("workers.embed_snapshots", [snapshot.pk]),
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"GIF89a\x01\x00\x01\x00not really", "is not a JPEG, PNG or WebP image."),
        ("truncated", "is truncated or corrupt"),
    ],
)
def test_a_bad_snapshot_image_keeps_the_form_and_creates_nothing(staff_client, payload, reason, truncated_jpeg):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = truncated_jpeg if payload == "truncated" else payload
    data = _post_data(image=SimpleUploadedFile("holiday.jpg", content, content_type="image/jpeg"))
    data.update(f.post_items_formset([{"new_image": f.make_upload("shoe.jpg")}]))
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["image"]
    assert errors[0].startswith("holiday.jpg: ") and reason in errors[0]
    html = response.content.decode()
    assert "holiday.jpg: " in html
    assert 'value="Street look"' in html and 'value="Mia"' in html
    assert Snapshot.objects.count() == 0 and Item.objects.count() == 0


def test_a_bad_inline_item_image_is_named_and_nothing_is_created(staff_client, truncated_jpeg):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = _post_data(image=f.make_upload("look.jpg"))
    data.update(
        f.post_items_formset(
            [
                {"new_image": f.make_upload("fine.jpg")},
                {"new_image": SimpleUploadedFile("broken-boot.jpg", truncated_jpeg, content_type="image/jpeg")},
            ]
        )
    )
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert inline_errors[0] == {}
    assert inline_errors[1]["new_image"][0].startswith("broken-boot.jpg: is truncated or corrupt")
    assert 'value="Street look"' in response.content.decode()
    assert (Snapshot.objects.count(), Item.objects.count(), PostItem.objects.count()) == (0, 0, 0)


def test_oversized_upload_is_refused_with_the_limit(staff_client, settings):
    settings.CATALOG_MAX_UPLOAD_BYTES = 1000
    data = _post_data(image=f.make_upload("huge.jpg", size=(400, 400)))
    data.update(f.post_items_formset([]))
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    assert "huge.jpg: is" in response.context["adminform"].form.errors["image"][0]
    [message] = response.context["adminform"].form.errors["image"]
    assert re.fullmatch(r"huge\.jpg: is [\d.]+ KiB; the limit is 1000 bytes\.", message)


def test_an_empty_file_is_named_in_the_error(staff_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = _post_data(image=SimpleUploadedFile("blank-look.jpg", b"", content_type="image/jpeg"))
    data.update(
        f.post_items_formset([{"new_image": SimpleUploadedFile("blank-boot.jpg", b"", content_type="image/jpeg")}])
    )
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["image"] == ["blank-look.jpg: is empty."]
    inline_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert inline_errors[0]["new_image"] == ["blank-boot.jpg: is empty."]
    assert Snapshot.objects.count() == 0


def test_a_duplicate_item_image_points_to_the_existing_item(staff_client):
    existing = f.make_item("Blue scarf", image=f.make_clean_image(seed=4242))
    data = _post_data(image=f.make_upload("look.jpg"))
    data.update(f.post_items_formset([{"new_image": f.make_upload("scarf-again.jpg", seed=4242)}]))
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    message = response.context["inline_admin_formsets"][0].formset.errors[0]["new_image"][0]
    assert message == (
        f"scarf-again.jpg: the same image is already in the catalog as item #{existing.pk} “Blue scarf”. "
        "Pick it as the existing item instead."
    )
    assert Snapshot.objects.count() == 0


def test_a_duplicate_snapshot_image_is_reported(staff_client):
    first = f.make_snapshot("First look", image=f.make_clean_image(seed=777))
    data = _post_data(image=f.make_upload("again.jpg", seed=777))
    data.update(f.post_items_formset([]))
    response = staff_client.post(ADD_URL, data)
    assert response.context["adminform"].form.errors["image"] == [
        f"again.jpg: the same image is already in the catalog as snapshot #{first.pk} “First look”."
    ]
    assert Snapshot.objects.count() == 1


def test_picking_and_uploading_in_one_row_is_refused(staff_client):
    item = f.make_item()
    data = _post_data(image=f.make_upload("look.jpg"))
    data.update(f.post_items_formset([{"item": item.pk, "new_image": f.make_upload("x.jpg")}]))
    response = staff_client.post(ADD_URL, data)
    errors = response.context["inline_admin_formsets"][0].formset.errors[0]["__all__"]
    assert errors == ["Pick an existing item or upload a new one, not both."]


def test_editing_a_post_removes_adds_items_and_a_new_image_requeues(staff_client, django_capture_on_commit_callbacks):
    keep, drop = f.make_item("keep"), f.make_item("drop")
    snapshot = f.make_snapshot("Edit me", items=[keep, drop], embedding_status=EmbeddingStatus.READY)
    rows = list(snapshot.post_items.all())
    data = _post_data(title="Edited", image=f.make_upload("new-look.jpg"))
    data.update(
        f.post_items_formset(
            [
                {"id": rows[0].pk, "snapshot": snapshot.pk, "item": keep.pk},
                {"id": rows[1].pk, "snapshot": snapshot.pk, "item": drop.pk, "DELETE": "on"},
                {"new_image": f.make_upload("added.jpg")},
            ],
            initial=2,
        )
    )
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(reverse("admin:catalog_snapshot_change", args=[snapshot.pk]), data)
    assert response.status_code == 302
    snapshot.refresh_from_db()
    assert snapshot.title == "Edited"
    assert snapshot.embedding_status == EmbeddingStatus.PENDING
    assert [pi.item.name for pi in snapshot.post_items.select_related("item")] == ["keep", "added"]


def test_editing_without_a_new_image_keeps_the_picture(staff_client):
    snapshot = f.make_snapshot("Same", embedding_status=EmbeddingStatus.READY)
    old = snapshot.image.name
    page = staff_client.get(reverse("admin:catalog_snapshot_change", args=[snapshot.pk]))
    assert page.status_code == 200 and snapshot.thumbnail.url in page.content.decode()
    data = _post_data(title="Same, renamed")
    data.update(f.post_items_formset([]))
    response = staff_client.post(reverse("admin:catalog_snapshot_change", args=[snapshot.pk]), data)
    assert response.status_code == 302
    snapshot.refresh_from_db()
    assert (snapshot.title, snapshot.image.name, snapshot.embedding_status) == ("Same, renamed", old, "ready")


def test_lists_show_thumbnails_and_filter(staff_client):
    shoes = f.make_category("Shoes")
    sneakers = f.make_category("Sneakers", parent=shoes)
    brand, style = f.make_brand("Acme"), f.make_style("Sporty")
    runner = f.make_item("Runner", category=sneakers, brand=brand, styles=[style])
    hat = f.make_item("Hat", embedding_status=EmbeddingStatus.FAILED)
    snapshot = f.make_snapshot("Look", items=[runner], styles=[style])
    url = reverse("admin:catalog_item_changelist")

    page = staff_client.get(url).content.decode()
    assert runner.thumbnail.url in page and hat.thumbnail.url in page
    by_parent = staff_client.get(url, {"category": shoes.pk}).context["cl"].result_list
    assert [i.name for i in by_parent] == ["Runner"]
    assert [i.name for i in staff_client.get(url, {"embedding_status__exact": "failed"}).context["cl"].result_list] == [
        "Hat"
    ]
    assert [i.name for i in staff_client.get(url, {"brand__id__exact": brand.pk}).context["cl"].result_list] == [
        "Runner"
    ]
    assert [i.name for i in staff_client.get(url, {"q": "runn"}).context["cl"].result_list] == ["Runner"]

    snaps = staff_client.get(reverse("admin:catalog_snapshot_changelist"), {"styles__id__exact": style.pk})
    assert [s.title for s in snaps.context["cl"].result_list] == ["Look"]
    assert snapshot.thumbnail.url in snaps.content.decode()
    f.make_snapshot("Hat look", items=[hat])
    by_item_category = staff_client.get(reverse("admin:catalog_snapshot_changelist"), {"item_category": shoes.pk})
    assert [(s.title, s.item_total) for s in by_item_category.context["cl"].result_list] == [("Look", 1)]


def test_requeue_action_marks_pending_and_queues(staff_client, django_capture_on_commit_callbacks, queued_messages):
    failed = f.make_item(embedding_status=EmbeddingStatus.FAILED)
    ready = f.make_item(embedding_status=EmbeddingStatus.READY)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("admin:catalog_item_changelist"),
            {"action": "requeue_embeddings", "_selected_action": [failed.pk, ready.pk]},
        )
    assert response.status_code == 302
    assert set(Item.objects.values_list("embedding_status", flat=True)) == {"pending"}
    assert queued_messages("embedding") == [("workers.embed_items", sorted([failed.pk, ready.pk]))]


def test_item_admin_upload_uses_the_service(staff_client):
    response = staff_client.post(
        reverse("admin:catalog_item_add"),
        {"name": "Sneaker", "image": f.make_upload("sneaker.webp", fmt="WEBP"), "price": "59.00"},
    )
    assert response.status_code == 302
    item = Item.objects.get()
    assert (item.name, item.width, item.embedding_status) == ("Sneaker", 120, "pending")
    assert item.thumbnail.name.endswith(".jpg") and item.image.name.endswith(".jpg")


def test_the_add_page_offers_picking_and_uploading_items(staff_client):
    page = staff_client.get(ADD_URL)
    assert page.status_code == 200
    html = page.content.decode()
    for name in ('name="image"', 'name="post_items-0-item"', 'name="post_items-0-new_image"', 'name="title"'):
        assert name in html
    assert 'enctype="multipart/form-data"' in html


def test_item_admin_change_with_a_new_image_requeues(staff_client, django_capture_on_commit_callbacks, queued_messages):
    item = f.make_item("Old", embedding_status=EmbeddingStatus.READY, styles=[f.make_style("A")])
    style_b = f.make_style("B")
    url = reverse("admin:catalog_item_change", args=[item.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            url, {"name": "New", "styles": [style_b.pk], "image": f.make_upload("v2.png", fmt="PNG")}
        )
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.name, item.embedding_status, item.image.name.endswith(".png")) == ("New", "pending", True)
    assert list(item.styles.all()) == [style_b]
    assert queued_messages("embedding") == [("workers.embed_items", [item.pk])]


def test_only_staff_reach_the_admin(client, django_user_model):
    assert client.get(ADD_URL).status_code == 302
    user = django_user_model.objects.create_user("shopper", password="pw")
    client.force_login(user)
    response = client.get(ADD_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_nul_byte_in_an_admin_form_is_refused_before_the_form(staff_client):
    data = _post_data(image=f.make_upload("look.jpg"), styles=["a\x00b"], brands=["a\x00b"])
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 400
    assert "contains a NUL byte" in response.content.decode()
    assert Snapshot.objects.count() == 0


@pytest.mark.parametrize("value", ["boho", "1.5"])
def test_an_autocomplete_field_given_something_that_is_not_an_id_is_a_form_error(staff_client, value):
    # Django's autocomplete widget queried the submitted value to re-render it: a 500 for a non-id.
    data = _post_data(image=f.make_upload("look.jpg"), styles=[value], brands=[value])
    data.update(f.post_items_formset([{"item": value}]))
    response = staff_client.post(ADD_URL, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"styles", "brands"}
    assert response.context["inline_admin_formsets"][0].formset.errors[0]["item"]
    assert Snapshot.objects.count() == 0
