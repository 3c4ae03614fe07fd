"""Staff and the garments of a saved snapshot: shown in the admin, an item made of one in one click, tags."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from catalog.models import Item, PostItem, SnapshotGarment
from catalog.services.garments import garment_crop, post_item_from_garment
from catalog.services.taxonomy import category_tree_ensure
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("staff", "staff@example.com", "pw"))
    return client


def _striped_photo(width=200, height=300):
    """Red above, blue below: a garment over the lower half is all blue inside its outline."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[: height // 2] = (220, 30, 30)
    pixels[height // 2 :] = (30, 30, 220)
    return Image.fromarray(pixels)


@pytest.fixture
def look():
    from catalog.validators import clean_pil_image

    category_tree_ensure()
    version = f.make_model_version(status="active", max_regions=3)
    snapshot = f.make_snapshot(
        title="Blue trousers", image=clean_pil_image(_striped_photo(), name="look.png", prefer_png=True)
    )

    # trousers: a triangle in the lower half's box (white outside it); shoes: a box at the bottom
    def garment(region, group, box, outline, confidence, area):
        return SnapshotGarment.objects.create(
            snapshot=snapshot,
            model_version=version,
            region=region,
            group=group,
            box=box,
            outline=outline,
            confidence=confidence,
            area=area,
        )

    trousers = garment(1, "trousers", [0.2, 0.5, 0.8, 0.9], [[[0.2, 0.5], [0.8, 0.5], [0.5, 0.9]]], 0.8, 0.12)
    shoes = garment(2, "shoes", [0.3, 0.9, 0.7, 1.0], [], 0.7, 0.04)
    return {"snapshot": snapshot, "version": version, "trousers": trousers, "shoes": shoes}


def test_the_crop_is_the_box_white_outside_the_outline(look):
    crop = np.asarray(garment_crop(snapshot=look["snapshot"], garment=look["trousers"]))
    assert crop.shape == (120, 120, 3)  # 0.6 x 0.4 of 200 x 300
    assert tuple(crop[5, 60]) == (30, 30, 220)  # inside the triangle, near its top edge: the photo
    assert tuple(crop[110, 5]) == (255, 255, 255)  # outside it: white
    whole = np.asarray(garment_crop(snapshot=look["snapshot"], garment=look["shoes"]))
    assert whole.shape == (30, 80, 3) and (whole == (30, 30, 220)).all()  # no outline: the whole box


def test_staff_see_the_garments_and_make_an_item_of_one_in_one_click(
    staff_client, look, django_capture_on_commit_callbacks
):
    snapshot = look["snapshot"]
    page = staff_client.get(reverse("admin:catalog_snapshot_change", args=[snapshot.pk])).content.decode()
    assert "Garments found by the active model" in page
    assert "Trousers (80% sure" in page and "Shoes (70% sure" in page
    assert page.count("<polygon ") == 1  # the trousers' outline over the photo; the shoes have none
    assert f'name="garment" value="{look["trousers"].pk}"' in page
    url = reverse("admin:catalog_snapshot_garment_item", args=[snapshot.pk])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(url, {"garment": look["trousers"].pk})
    assert response.status_code == 302
    item = Item.objects.get(source_key__startswith=f"garment:{snapshot.pk}:")
    assert item.name == "Trousers from Blue trousers" and item.category.slug == "trousers"
    assert item.embedding_status == "pending" and callbacks  # its embedding goes out after commit
    assert list(PostItem.objects.filter(snapshot=snapshot).values_list("item_id", flat=True)) == [item.pk]
    # a second click finds the same item; another garment makes another
    staff_client.post(url, {"garment": look["trousers"].pk})
    staff_client.post(url, {"garment": look["shoes"].pk})
    assert Item.objects.filter(source_key__startswith=f"garment:{snapshot.pk}:").count() == 2
    assert PostItem.objects.filter(snapshot=snapshot).count() == 2
    assert Item.objects.get(name="Shoes from Blue trousers").category.slug == "shoes"


def test_bad_garment_actions_are_messages_not_errors(staff_client, look):
    snapshot = look["snapshot"]
    other = f.make_snapshot()
    url = reverse("admin:catalog_snapshot_garment_item", args=[snapshot.pk])
    for value in ("", "abc", "999999", "-1"):
        response = staff_client.post(url, {"garment": value}, follow=True)
        assert response.status_code == 200 and "not on this snapshot" in response.content.decode()
    assert staff_client.post(url, {"garment": "1\x00"}).status_code == 400  # NUL: the site's clear 400
    other_url = reverse("admin:catalog_snapshot_garment_item", args=[other.pk])
    response = staff_client.post(other_url, {"garment": look["trousers"].pk}, follow=True)
    assert "not on this snapshot" in response.content.decode()
    assert staff_client.get(url).status_code == 405
    assert staff_client.post("/admin/catalog/snapshot/abc/garments/item/", {"garment": 1}).status_code == 302
    assert not Item.objects.exists()
    with pytest.raises(Exception, match="another snapshot"):
        post_item_from_garment(snapshot=other, garment=look["trousers"])


def test_suggested_tags_are_accepted_in_one_click(staff_client, look):
    snapshot = look["snapshot"]
    page = staff_client.get(reverse("admin:catalog_snapshot_change", args=[snapshot.pk])).content.decode()
    assert "Suggested tags: trousers, shoes" in page
    url = reverse("admin:catalog_snapshot_garment_tags", args=[snapshot.pk])
    staff_client.post(url, {"tags": "trousers,shoes,not-suggested"})
    assert sorted(snapshot.tags.values_list("name", flat=True)) == ["shoes", "trousers"]
    page = staff_client.get(reverse("admin:catalog_snapshot_change", args=[snapshot.pk])).content.decode()
    assert "Suggested tags" not in page
