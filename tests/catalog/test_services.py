"""Catalog services on the real database: posts, items, snapshots, duplicates, thumbnails, embedding queueing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from PIL import Image

from catalog.models import EmbeddingStatus, Item, PostItem, Snapshot
from catalog.services.embedding_queue import embeddings_requeue
from catalog.services.images import DuplicateImageError
from catalog.services.items import item_create, item_update
from catalog.services.posts import NewItem, post_create, post_update
from catalog.services.snapshots import snapshot_update
from catalog.services.taxonomy import category_get_or_create
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_post_create_with_new_and_existing_items_stores_images_and_thumbnails(settings):
    existing = f.make_item("Old boots")
    style = f.make_style("Street")
    snapshot = post_create(
        image=f.make_clean_image("look.jpg", size=(640, 960)),
        title="Autumn look",
        person_name="Ana",
        person_age=31,
        styles=[style],
        tags=[f.make_tag("autumn")],
        brands=[f.make_brand("Acme")],
        items=[NewItem(image=f.make_clean_image("coat.jpg"), name="Coat", price=Decimal("120.00")), existing],
        enqueue=False,
    )
    snapshot.refresh_from_db()
    assert (snapshot.width, snapshot.height) == (640, 960)
    assert snapshot.embedding_status == EmbeddingStatus.PENDING
    assert [pi.item.name for pi in snapshot.post_items.select_related("item")] == ["Coat", "Old boots"]
    assert [pi.position for pi in snapshot.post_items.all()] == [0, 1]
    assert list(snapshot.styles.values_list("name", flat=True)) == ["Street"]
    assert default_storage.exists(snapshot.image.name)
    with Image.open(default_storage.path(snapshot.thumbnail.name)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (settings.CATALOG_THUMBNAIL_WIDTH, 480)
    coat = Item.objects.get(name="Coat")
    assert coat.price == Decimal("120.00") and coat.width == 120


def test_small_images_get_a_thumbnail_that_is_not_enlarged():
    item = f.make_item(image=f.make_clean_image(size=(100, 50)))
    with Image.open(default_storage.path(item.thumbnail.name)) as thumb:
        assert thumb.size == (100, 50)


def test_duplicate_image_is_reported_and_nothing_is_created():
    clean = f.make_clean_image("first.jpg", seed=999)
    first = f.make_item("First", image=clean)
    with pytest.raises(DuplicateImageError) as err:
        item_create(image=f.make_clean_image("again.jpg", seed=999), name="Again", enqueue=False)
    assert err.value.code == "duplicate"
    assert err.value.existing == first
    assert err.value.messages == [f"again.jpg: the same image is already in the catalog as item #{first.pk} “First”."]
    assert Item.objects.count() == 1


def test_post_with_a_duplicate_item_image_leaves_no_half_created_post():
    taken = f.make_item(image=f.make_clean_image(seed=555))
    with pytest.raises(ValidationError):
        post_create(
            image=f.make_clean_image("look.jpg"),
            title="Half",
            items=[
                NewItem(image=f.make_clean_image("ok.jpg"), name="OK"),
                NewItem(image=f.make_clean_image("dup.jpg", seed=555), name="Dup"),
            ],
            enqueue=False,
        )
    assert Snapshot.objects.count() == 0
    assert list(Item.objects.all()) == [taken]
    assert PostItem.objects.count() == 0


def test_model_constraints_reject_bad_values():
    with pytest.raises(ValidationError) as err:
        item_create(image=f.make_clean_image(), name="Cheap", price=Decimal("-1"), enqueue=False)
    assert "price" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        post_create(image=f.make_clean_image(), title="Old", person_age=200, enqueue=False)
    assert "person_age" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        post_create(image=f.make_clean_image(), title="", enqueue=False)
    assert "title" in err.value.message_dict


def test_database_constraints_hold_without_the_services():
    from django.db import IntegrityError, transaction

    item = f.make_item()
    snapshot = f.make_snapshot(items=[item])
    with pytest.raises(IntegrityError), transaction.atomic():
        PostItem.objects.create(snapshot=snapshot, item=item, position=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(price=Decimal("-5"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Snapshot.objects.filter(pk=snapshot.pk).update(person_age=500)
    other = f.make_item()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=other.pk).update(content_hash=item.content_hash)
    shoes = f.make_category("Shoes")
    with pytest.raises(IntegrityError), transaction.atomic():
        type(shoes).objects.filter(pk=shoes.pk).update(parent=shoes)


def test_changing_an_image_resets_the_embedding_to_pending():
    item = f.make_item(embedding_status=EmbeddingStatus.READY)
    old_hash, old_name = item.content_hash, item.image.name
    item_update(item=item, name="Renamed", enqueue=False)
    item.refresh_from_db()
    assert item.embedding_status == EmbeddingStatus.READY and item.name == "Renamed"
    item_update(item=item, image=f.make_clean_image("new.png"), enqueue=False)
    item.refresh_from_db()
    assert item.embedding_status == EmbeddingStatus.PENDING
    assert item.content_hash != old_hash and item.image.name != old_name

    snapshot = f.make_snapshot(embedding_status=EmbeddingStatus.FAILED)
    Snapshot.objects.filter(pk=snapshot.pk).update(embedding_error="boom")
    snapshot.refresh_from_db()
    snapshot_update(snapshot=snapshot, image=f.make_clean_image(), enqueue=False)
    snapshot.refresh_from_db()
    assert (snapshot.embedding_status, snapshot.embedding_error) == (EmbeddingStatus.PENDING, "")


def test_post_update_replaces_the_curated_items_in_order():
    a, b, c = f.make_item("a"), f.make_item("b"), f.make_item("c")
    snapshot = f.make_snapshot(items=[a, b])
    post_update(snapshot=snapshot, items=[c, a, NewItem(image=f.make_clean_image(), name="d")], enqueue=False)
    assert [pi.item.name for pi in snapshot.post_items.select_related("item")] == ["c", "a", "d"]
    assert Item.objects.filter(name="b").exists()  # unlinked, not deleted


def test_category_paths_build_a_tree_and_merge_case_insensitive_names():
    sneakers = category_get_or_create(path="Shoes > Sneakers")
    assert sneakers.parent.name == "Shoes"
    assert category_get_or_create(path="shoes").pk == sneakers.parent_id
    assert category_get_or_create(path="T-Shirt").pk == category_get_or_create(path="t-shirt").pk

    from catalog.selectors import category_ids_with_descendants, item_list

    # An unknown tree (the canonical Shoes may hold more children than this test made).
    trail = category_get_or_create(path="Footwear-x > Trail")
    climbing = category_get_or_create(path="Footwear-x > Climbing")
    f.make_item("runner", category=trail)
    f.make_item("hat", category=category_get_or_create(path="Hat"))
    expected = tuple(sorted([trail.parent_id, trail.pk, climbing.pk]))
    assert category_ids_with_descendants([trail.parent_id]) == expected
    assert [i.name for i in item_list(categories=[trail.parent])] == ["runner"]


@pytest.mark.django_db(transaction=True)
def test_embeddings_are_queued_by_task_name_after_commit(queued_messages, settings):
    settings.CATALOG_EMBED_BATCH_SIZE = 2
    snapshot = post_create(
        image=f.make_clean_image(),
        title="Queued",
        items=[NewItem(image=f.make_clean_image(), name=f"i{n}") for n in range(3)],
    )
    item_ids = sorted(snapshot.items.values_list("pk", flat=True))
    messages = queued_messages("embedding")
    assert ("workers.embed_snapshots", [snapshot.pk]) in messages
    # One message per batch of CATALOG_EMBED_BATCH_SIZE ids, not one per item.
    assert [args for name, args in messages if name == "workers.embed_items"] == [item_ids[:2], item_ids[2:]]
    assert len(messages) == 3


@pytest.mark.django_db(transaction=True)
def test_nothing_is_queued_when_the_transaction_rolls_back(queued_messages):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        f.make_item(enqueue=True)
        raise RuntimeError("abort")
    assert queued_messages("embedding") == []


@pytest.mark.django_db(transaction=True)
def test_requeue_marks_pending_and_sends_batches(queued_messages, settings):
    settings.CATALOG_EMBED_BATCH_SIZE = 2
    items = [f.make_item(embedding_status=EmbeddingStatus.FAILED) for _ in range(3)]
    Item.objects.update(embedding_error="model missing")
    snapshot = f.make_snapshot(embedding_status=EmbeddingStatus.READY)
    counts = embeddings_requeue(items=Item.objects.all(), snapshots=Snapshot.objects.filter(pk=snapshot.pk))
    assert counts == (3, 1)
    assert set(Item.objects.values_list("embedding_status", "embedding_error")) == {("pending", "")}
    messages = queued_messages("embedding")
    ids = sorted(i.pk for i in items)
    assert messages == [
        ("workers.embed_items", ids[:2]),
        ("workers.embed_items", ids[2:]),
        ("workers.embed_snapshots", [snapshot.pk]),
    ]


def test_prune_media_finds_and_deletes_only_unreferenced_files(settings, tmp_path):
    import io as _io

    from django.core.management import call_command

    from catalog.services.media import media_orphans

    settings.MEDIA_ROOT = tmp_path / "media"  # never touch files other tests rely on
    item = f.make_item()
    orphan = tmp_path / "media" / "thumbs" / "orphan-test.jpg"
    orphan.write_bytes(b"x")
    assert media_orphans() == ["thumbs/orphan-test.jpg"]
    out = _io.StringIO()
    call_command("catalog_prune_media", stdout=out)
    assert "1 unreferenced files" in out.getvalue() and orphan.exists()
    call_command("catalog_prune_media", "--delete", stdout=_io.StringIO())
    assert not orphan.exists()
    assert default_storage.exists(item.image.name) and default_storage.exists(item.thumbnail.name)
    assert str(tmp_path) in default_storage.path(item.image.name)
