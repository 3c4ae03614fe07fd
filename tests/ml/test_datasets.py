from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from ml.datasets import ccp, clothing

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CCP, CLOTHING = DATASETS / "ccp", DATASETS / "clothing-dataset"
needs_ccp = pytest.mark.skipif(not (CCP / "label_list.mat").exists(), reason="CCP dataset not available")
needs_clothing = pytest.mark.skipif(not (CLOTHING / "images.csv").exists(), reason="clothing-dataset not available")

NAMES = ["null", "bag", "hair", "skin", "dress", "shoes"]


@pytest.fixture
def tiny_ccp(tmp_path):
    """A 2-photo CCP layout: labels, a pixel-level photo and a tag-only photo."""
    root = tmp_path / "ccp"
    (root / "photos").mkdir(parents=True)
    (root / "annotations" / "pixel-level").mkdir(parents=True)
    (root / "annotations" / "image-level").mkdir(parents=True)
    savemat(root / "label_list.mat", {"label_list": np.array([NAMES], dtype=object)})
    gt = np.zeros((100, 100), np.uint8)
    gt[10:30, 20:60] = 4  # dress, 8%
    gt[90:92, 0:2] = 5  # shoes, 0.04%: below the 0.5% threshold
    gt[40:60, 40:60] = 2  # hair: excluded
    gt[70:80, 70:75] = 1  # bag, 0.5% exactly
    savemat(root / "annotations" / "pixel-level" / "0001.mat", {"groundtruth": gt})
    photo = np.full((100, 100, 3), 10, np.uint8)
    Image.fromarray(photo).save(root / "photos" / "0001.jpg", quality=100)
    Image.fromarray(photo).save(root / "photos" / "1005.jpg")
    savemat(root / "annotations" / "image-level" / "1005.mat", {"tags": np.array([[0, 4, 5]])})
    return root


def test_protocol_items(tiny_ccp):
    posts = ccp.load_posts(tiny_ccp, "train")
    assert [p.post_id for p in posts] == [1]
    items = posts[0].items
    assert [(i.label, i.bbox) for i in items] == [("bag", (70, 70, 75, 80)), ("dress", (20, 10, 60, 30))]
    crops = ccp.item_images(posts[0])
    assert [c.size for c in crops] == [(5, 10), (40, 20)]
    assert ccp.load_posts(tiny_ccp, "val") == []


def test_crops_are_white_outside_the_mask(tiny_ccp):
    gt = np.zeros((100, 100), np.uint8)
    gt[10:30, 20:60] = 4
    gt[10:20, 20:40] = 0  # an L-shaped dress: part of its bbox is background
    savemat(tiny_ccp / "annotations" / "pixel-level" / "0001.mat", {"groundtruth": gt})
    post = ccp.load_posts(tiny_ccp, "train")[0]
    (crop,) = ccp.item_images(post)
    pixels = np.asarray(crop)
    assert (pixels[:10, :20] == 255).all()
    assert (pixels[15:, 25:] < 50).all()


def test_tagged_photos(tiny_ccp):
    (photo,) = ccp.tagged_photos(tiny_ccp)
    assert photo.photo_id == 1005 and photo.labels == ("null", "dress", "shoes")


def test_unknown_split(tiny_ccp):
    with pytest.raises(ValueError):
        ccp.load_posts(tiny_ccp, "holdout")


@needs_ccp
def test_real_val_split_matches_the_protocol():
    posts = ccp.load_posts(CCP, "val")
    assert len(posts) == 200 and posts[0].post_id == 601
    assert sum(len(p.items) for p in posts) == 801
    excluded = {"null", "skin", "hair"}
    assert all(item.label not in excluded and item.pixel_fraction >= 0.005 for p in posts for item in p.items)


@needs_clothing
def test_gallery():
    gallery = clothing.load_gallery(CLOTHING)
    assert len(gallery) == 4656
    assert len({g.label for g in gallery}) == 17
    assert clothing.gallery_categories(["jeans", "sneakers"]) == {"Pants", "Shoes"}
