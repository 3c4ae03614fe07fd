"""The import commands on small slices of ../shared/datasets and on the example manifest."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from catalog.models import Category, Item, PostItem, Snapshot, Tag
from catalog.taxonomy import canonical_path
from tests import factories as f

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--no-progress"]


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, *QUIET, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def ccp_slice(datasets_dir, tmp_path) -> Path:
    """A CCP folder with posts 0001, 0002, 0601 and tag-only photos 1005, 1006 (symlinks to the shared files)."""
    src, dst = datasets_dir / "ccp", tmp_path / "ccp"
    for sub in ("photos", "annotations/pixel-level", "annotations/image-level"):
        (dst / sub).mkdir(parents=True)
    (dst / "label_list.mat").symlink_to(src / "label_list.mat")
    for n in (1, 2, 601):
        (dst / f"annotations/pixel-level/{n:04d}.mat").symlink_to(src / f"annotations/pixel-level/{n:04d}.mat")
    for n in (1005, 1006):
        (dst / f"annotations/image-level/{n:04d}.mat").symlink_to(src / f"annotations/image-level/{n:04d}.mat")
    for n in (1, 2, 601, 1005, 1006):
        (dst / f"photos/{n:04d}.jpg").symlink_to(src / f"photos/{n:04d}.jpg")
    return dst


def test_import_ccp_follows_the_posts_protocol(ccp_slice, django_capture_on_commit_callbacks, queued_messages):
    from ml.datasets import ccp

    expected = ccp.load_posts(ccp_slice, "train")
    with django_capture_on_commit_callbacks(execute=True):
        output = run("import_ccp", str(ccp_slice), "--split", "train")
    assert "created 2, skipped 0, failed 0" in output
    assert Snapshot.objects.count() == 2
    for post in expected:
        snapshot = Snapshot.objects.get(source_key=f"ccp:post:{post.post_id:04d}")
        items = [pi.item for pi in snapshot.post_items.select_related("item__category")]
        # Each CCP label lands in its canonical category (catalog.taxonomy).
        assert [str(i.category) for i in items] == [canonical_path(spec.label) for spec in post.items]
        assert all(spec.label not in {"null", "skin", "hair"} for spec in post.items)
        for item, spec in zip(items, post.items, strict=True):
            left, top, right, bottom = spec.bbox
            assert (item.width, item.height) == (right - left, bottom - top)
            assert item.source_key == f"ccp:item:{post.post_id:04d}:{spec.label}"
        assert sorted(snapshot.tags.values_list("name", flat=True)) == sorted(s.label for s in post.items)
    # A crop is white outside its mask: the crop of the first item matches the protocol's own crop.
    post = expected[0]
    item = Item.objects.get(source_key=f"ccp:item:0001:{post.items[0].label}")
    stored = np.asarray(Image.open(item.image.path).convert("RGB"), dtype=np.int16)
    reference = np.asarray(ccp.item_images(post)[0], dtype=np.int16)
    assert np.abs(stored - reference).mean() < 3  # JPEG q90
    n_items = sum(len(p.items) for p in expected)
    assert Item.objects.count() == n_items
    # Embeddings queued in batches after commit.
    messages = queued_messages("embedding")
    assert sorted(sum((args for name, args in messages if name == "workers.embed_items"), [])) == sorted(
        Item.objects.values_list("pk", flat=True)
    )
    assert sorted(sum((args for name, args in messages if name == "workers.embed_snapshots"), [])) == sorted(
        Snapshot.objects.values_list("pk", flat=True)
    )


def test_import_ccp_all_adds_val_and_tag_only_photos_and_is_idempotent(ccp_slice):
    from ml.datasets import ccp

    output = run("import_ccp", str(ccp_slice), "--split", "all", "--no-enqueue")
    assert "created 5, skipped 0, failed 0" in output
    assert Snapshot.objects.filter(source_key__startswith="ccp:post:").count() == 3
    tagged = Snapshot.objects.get(source_key="ccp:photo:1005")
    labels = [p for p in ccp.tagged_photos(ccp_slice) if p.photo_id == 1005][0].labels
    assert sorted(tagged.tags.values_list("name", flat=True)) == sorted(set(labels) - {"null", "skin", "hair"})
    assert tagged.post_items.count() == 0
    assert set(Snapshot.objects.values_list("embedding_status", flat=True)) == {"pending"}
    counts = (Snapshot.objects.count(), Item.objects.count(), PostItem.objects.count(), Category.objects.count())

    again = run("import_ccp", str(ccp_slice), "--split", "all")
    assert "created 0, skipped 5, failed 0" in again and "skipped 5: already imported" in again
    assert (
        Snapshot.objects.count(),
        Item.objects.count(),
        PostItem.objects.count(),
        Category.objects.count(),
    ) == counts


def test_import_ccp_val_limit_on_the_shared_dataset(datasets_dir):
    output = run("import_ccp", str(datasets_dir / "ccp"), "--split", "val", "--limit", "2", "--no-enqueue")
    assert "created 2" in output
    assert sorted(Snapshot.objects.values_list("source_key", flat=True)) == ["ccp:post:0601", "ccp:post:0602"]


def test_import_ccp_skips_a_bad_photo_and_strict_aborts(ccp_slice):
    photo = ccp_slice / "photos" / "0002.jpg"
    photo.unlink()
    photo.write_bytes(b"\xff\xd8\xff\xe0 broken")
    output = run("import_ccp", str(ccp_slice), "--split", "train", "--no-enqueue")
    assert "created 1, skipped 0, failed 1" in output
    assert "failed ccp:post:0002:" in output
    assert not Snapshot.objects.filter(source_key="ccp:post:0002").exists()
    assert not Item.objects.filter(source_key__startswith="ccp:item:0002:").exists()  # nothing half-made
    with pytest.raises(CommandError, match="Aborted \\(--strict\\): ccp:post:0002: "):
        run("import_ccp", str(ccp_slice), "--split", "train", "--strict", "--no-enqueue")


def test_import_ccp_refuses_a_wrong_folder(tmp_path):
    with pytest.raises(CommandError, match="is not a CCP folder"):
        run("import_ccp", str(tmp_path))


def test_import_clothing_slice_and_rerun(datasets_dir):
    output = run("import_clothing", str(datasets_dir / "clothing-dataset"), "--limit", "6", "--no-enqueue")
    assert "created 6, skipped 0, failed 0" in output
    with open(datasets_dir / "clothing-dataset" / "images.csv", newline="") as fh:
        first = list(csv.DictReader(fh))[:6]
    items = {i.source_key: i for i in Item.objects.select_related("category")}
    for row in first:
        item = items[f"clothing:{row['image']}"]
        assert str(item.category) == canonical_path(row["label"]) and item.width > 0 and item.thumbnail
    again = run("import_clothing", str(datasets_dir / "clothing-dataset"), "--limit", "8", "--no-enqueue")
    assert "created 2, skipped 6, failed 0" in again
    assert Item.objects.count() == 8


@pytest.fixture
def clothing_slice(datasets_dir, tmp_path) -> Path:
    """A clothing-dataset folder with good rows and every kind of bad row."""
    src, dst = datasets_dir / "clothing-dataset", tmp_path / "clothing"
    (dst / "images").mkdir(parents=True)
    with open(src / "images.csv", newline="") as fh:
        good = list(csv.DictReader(fh))[:3]
    for row in good:
        shutil.copy(src / "images" / f"{row['image']}.jpg", dst / "images")
    (dst / "images" / "truncated.jpg").write_bytes((src / "images" / f"{good[0]['image']}.jpg").read_bytes()[:3000])
    (dst / "images" / "unsure.jpg").write_bytes(f.make_image_bytes())
    lines = ["image,sender_id,label,kids"]
    lines += [f"{r['image']},1,{r['label']},False" for r in good[:2]]
    lines += ["truncated,1,Shoes,False", "unsure,1,Not sure,False", "kid,1,Dress,True", "gone,1,Hat,False"]
    lines += [f"{good[2]['image']},1,{good[2]['label']},False"]
    (dst / "images.csv").write_text("\n".join(lines) + "\n")
    return dst


def test_import_clothing_reports_bad_rows_with_reasons(clothing_slice):
    output = run("import_clothing", str(clothing_slice), "--no-enqueue")
    assert "created 3, skipped 2, failed 2" in output
    assert "skipped 1: label 'Not sure' is not a garment category" in output
    assert "skipped 1: kids' clothes" in output
    assert "failed clothing:truncated: truncated.jpg: is truncated or corrupt" in output
    assert "failed clothing:gone: line 7: image file images/gone.jpg is missing" in output


@pytest.mark.django_db(transaction=True)
def test_strict_abort_keeps_the_batches_already_committed(clothing_slice):
    with pytest.raises(CommandError, match="clothing:truncated: truncated.jpg: is truncated"):
        run("import_clothing", str(clothing_slice), "--strict", "--batch-size", "1", "--no-enqueue")
    assert Item.objects.count() == 2  # rows 1-2 were committed before row 3 failed


def test_import_manifest_example(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        output = run("import_manifest", str(ROOT / "examples" / "manifest.json"))
    assert "created 2, skipped 0, failed 0" in output
    assert len(callbacks) == 2  # one batch: items and snapshots, sent after commit
    look = Snapshot.objects.get(source_key="manifest:example-shop:post:look-coat-and-boots")
    assert (look.title, look.person_name, look.person_age, look.person_occupation) == (
        "Camel coat, city boots",
        "Lena",
        29,
        "Designer",
    )
    assert sorted(look.styles.values_list("name", flat=True)) == ["Minimal", "Street"]
    assert list(look.brands.values_list("name", flat=True)) == ["Northwind"]
    assert [pi.item.name for pi in look.post_items.select_related("item")] == [
        "Wool blend coat",
        "Leather shoes",
        "Basic tee",
    ]
    coat = Item.objects.get(name="Wool blend coat")
    assert (str(coat.category), coat.brand.name, str(coat.price)) == ("Outerwear > Coats", "Northwind", "149.00")
    tee = Item.objects.get(source_key="manifest:example-shop:item:tee-003")
    shorts = Item.objects.get(source_key="manifest:example-shop:item:shorts-004")
    assert (str(tee.category), str(shorts.category)) == ("Tops > T-shirts", "Shorts")  # canonical, not the manifest's
    assert tee.snapshots.count() == 2  # one item linked to both posts
    assert Item.objects.count() == 4
    assert "created 0, skipped 2" in run("import_manifest", str(ROOT / "examples" / "manifest.json"))
    assert (Snapshot.objects.count(), Item.objects.count()) == (2, 4)


def test_import_manifest_bad_rows_and_bad_files(tmp_path):
    img = tmp_path / "look.png"
    img.write_bytes(f.make_image_bytes(fmt="PNG"))
    (tmp_path / "fake.jpg").write_text("hello")
    (tmp_path / "old.png").write_bytes(f.make_image_bytes(fmt="PNG"))
    manifest = {
        "source": "t",
        "posts": [
            {"image": "look.png", "title": "Good", "tags": ["x"], "items": []},
            {"image": "missing.jpg"},
            {"image": "fake.jpg"},
            {"image": "look.png", "key": "again", "items": [{"image": "look.png", "price": "cheap"}]},
            {"image": "look.png", "key": "colour", "colour": "red"},
            "not an object",
            {"image": "old.png", "key": "old", "person": {"age": 200}},
            {"image": "look.png", "key": "same-picture"},
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    output = run("import_manifest", str(path), "--no-enqueue")
    assert "created 1, skipped 0, failed 7" in output
    assert "failed manifest:t:post:missing.jpg: post 2.image: image file missing.jpg not found" in output
    assert "failed manifest:t:post:fake.jpg: fake.jpg: is not a JPEG, PNG or WebP image." in output
    assert "post 4.items[0].price 'cheap' is not a number" in output
    assert "post 5: unknown field(s) colour" in output
    assert "post 6 must be an object" in output
    assert "failed manifest:t:post:old: person_age: Ensure this value is less than or equal to 130." in output
    good = Snapshot.objects.get()
    assert f"look.png: the same image is already in the catalog as snapshot #{good.pk} “Good”." in output
    assert list(Tag.objects.values_list("name", flat=True)) == ["x"]

    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        run("import_manifest", str(path))
    path.write_text(json.dumps({"version": 2, "posts": []}))
    with pytest.raises(CommandError, match="version 2 is not supported"):
        run("import_manifest", str(path))
