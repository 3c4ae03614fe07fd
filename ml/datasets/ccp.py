"""Clothing Co-Parsing (CCP) in its upstream layout, and the CCP-Posts protocol.

Layout: ``photos/NNNN.jpg``; ``annotations/pixel-level/NNNN.mat`` (``groundtruth``:
HxW uint8 label ids); ``annotations/image-level/NNNN.mat`` (``tags``: label ids);
``label_list.mat`` (``label_list``: names, id 0 ``null``, 19 ``hair``, 41 ``skin``).

A post is a photo with a pixel-level annotation: its snapshot is the photo; its items
are, for every label present except null/skin/hair whose mask covers at least 0.5% of
the pixels, the tight bounding box of that mask cut from the photo with every pixel
outside the mask set to white. Splits by photo id: train 1..600, val 601..800, test
801..1004. Tag-only photos (1005..) are extra snapshots / distractors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = {"train": (1, 600), "val": (601, 800), "test": (801, 1004)}
EXCLUDED_LABELS = frozenset({"null", "skin", "hair"})
MIN_ITEM_FRACTION = 0.005


@dataclass(frozen=True)
class PostItem:
    label_id: int
    label: str
    bbox: tuple[int, int, int, int]  # (left, top, right, bottom), right/bottom exclusive
    pixel_fraction: float


@dataclass(frozen=True)
class Post:
    post_id: int
    snapshot_path: Path
    annotation_path: Path
    items: tuple[PostItem, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TaggedPhoto:
    photo_id: int
    path: Path
    label_ids: tuple[int, ...]
    labels: tuple[str, ...]


def label_names(root: str | Path) -> list[str]:
    from scipy.io import loadmat

    raw = loadmat(Path(root) / "label_list.mat")["label_list"][0]
    return [str(entry[0]) if len(entry) else "" for entry in raw]


def load_label_map(annotation_path: str | Path) -> np.ndarray:
    from scipy.io import loadmat

    return loadmat(annotation_path)["groundtruth"]


def items_from_label_map(label_map: np.ndarray, names: list[str]) -> tuple[PostItem, ...]:
    """The protocol's items of one photo, in label-id order."""
    ids, counts = np.unique(label_map, return_counts=True)
    total = label_map.size
    items = []
    for label_id, count in zip(ids.tolist(), counts.tolist(), strict=True):
        name = names[label_id]
        if name in EXCLUDED_LABELS or count / total < MIN_ITEM_FRACTION:
            continue
        rows = np.flatnonzero((label_map == label_id).any(axis=1))
        cols = np.flatnonzero((label_map == label_id).any(axis=0))
        bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        items.append(PostItem(label_id, name, bbox, count / total))
    return tuple(items)


def post_ids(root: str | Path, split: str) -> list[int]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLITS)}")
    lo, hi = SPLITS[split]
    folder = Path(root) / "annotations" / "pixel-level"
    return [i for i in range(lo, hi + 1) if (folder / f"{i:04d}.mat").exists()]


def load_post(root: str | Path, post_id: int, names: list[str] | None = None) -> Post:
    root = Path(root)
    names = names or label_names(root)
    annotation = root / "annotations" / "pixel-level" / f"{post_id:04d}.mat"
    items = items_from_label_map(load_label_map(annotation), names)
    return Post(post_id, root / "photos" / f"{post_id:04d}.jpg", annotation, items)


def load_posts(root: str | Path, split: str = "train", *, limit: int | None = None) -> list[Post]:
    """Posts of a split (photos with pixel-level annotations), sorted by id."""
    names = label_names(root)
    ids = post_ids(root, split)[:limit]
    return [load_post(root, i, names) for i in ids]


def item_images(post: Post) -> list[Image.Image]:
    """The post's item crops (RGB PIL images), white outside each label's mask."""
    label_map = load_label_map(post.annotation_path)
    with Image.open(post.snapshot_path) as img:
        photo = np.asarray(img.convert("RGB"))
    if photo.shape[:2] != label_map.shape:
        raise ValueError(f"photo {post.snapshot_path} and its annotation differ in size")
    crops = []
    for item in post.items:
        left, top, right, bottom = item.bbox
        crop = photo[top:bottom, left:right].copy()
        crop[label_map[top:bottom, left:right] != item.label_id] = 255
        crops.append(Image.fromarray(crop))
    return crops


def tagged_photos(root: str | Path, *, start: int = 1005) -> list[TaggedPhoto]:
    """Tag-only photos (image-level annotations) with their label ids, sorted by id."""
    from scipy.io import loadmat

    root = Path(root)
    names = label_names(root)
    out = []
    for ann in sorted((root / "annotations" / "image-level").glob("*.mat")):
        photo_id = int(ann.stem)
        photo = root / "photos" / f"{photo_id:04d}.jpg"
        if photo_id < start or not photo.exists():
            continue
        ids = tuple(int(i) for i in np.ravel(loadmat(ann)["tags"]))
        out.append(TaggedPhoto(photo_id, photo, ids, tuple(names[i] for i in ids)))
    return out
