"""Clothing Co-Parsing into the catalog, following the CCP-Posts protocol (../shared/datasets/README.md).

The protocol itself (which labels make items, the 0.5% area rule, the white-outside-mask
crops, the splits) lives in ``ml.datasets.ccp`` (pure: numpy, scipy, Pillow), so the catalog
and the ML evaluation cut exactly the same items. Identities (``source_key``):

- ``ccp:post:NNNN``: the snapshot of a post (a photo with a pixel-level annotation);
- ``ccp:item:NNNN:<label>``: one garment crop of that post, in the CCP label's canonical category
  (``catalog.taxonomy``);
- ``ccp:photo:NNNN``: a tag-only photo, a snapshot with its labels as tags and no items.

Splits by photo id: train 0001..0600, val 0601..0800. The test split (0801..1004) is never
imported, so the quality figures stay on unseen photos.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from catalog.importers.base import Created, Row, RowFailed, RowSkipped
from catalog.models import Item, Snapshot
from catalog.selectors import source_keys_existing
from catalog.services.images import find_duplicate
from catalog.services.posts import NewItem, post_create
from catalog.services.taxonomy import category_get_or_create, tag_get_or_create
from catalog.validators import clean_pil_image, validate_image_upload

IMPORT_SPLITS = ("train", "val", "all")
SNAPSHOT_SPLITS = {"train": ("train",), "val": ("val",), "all": ("train", "val")}


def post_key(photo_id: int) -> str:
    return f"ccp:post:{photo_id:04d}"


def item_key(photo_id: int, label: str) -> str:
    return f"ccp:item:{photo_id:04d}:{label}"


def photo_key(photo_id: int) -> str:
    return f"ccp:photo:{photo_id:04d}"


def split_of(photo_id: int) -> str:
    """``train``, ``val``, ``test`` (posts) or ``tags`` (tag-only photos, 1005 and up)."""
    from ml.datasets.ccp import SPLITS

    for split, (lo, hi) in SPLITS.items():
        if lo <= photo_id <= hi:
            return split
    return "tags"


def check_layout(root: Path) -> None:
    missing = [p for p in ("photos", "annotations", "label_list.mat") if not (root / p).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not a CCP folder (missing {', '.join(missing)})")


class CcpImporter:
    """Rows and the row handler for ``import_ccp``; caches taxonomy rows and the label names."""

    def __init__(self, root: Path, *, split: str = "all", limit: int | None = None):
        from ml.datasets import ccp

        if split not in IMPORT_SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(IMPORT_SPLITS)}")
        check_layout(root)
        self.ccp = ccp
        self.root = root
        self.split = split
        self.names = ccp.label_names(root)
        post_ids = [i for s in SNAPSHOT_SPLITS[split] for i in ccp.post_ids(root, s)]
        self.rows: list[Row] = [Row(post_key(i), ("post", i)) for i in post_ids]
        if split == "all":
            self.rows += [Row(photo_key(p.photo_id), ("photo", p)) for p in ccp.tagged_photos(root)]
        if limit is not None:
            self.rows = self.rows[:limit]
        self.done = source_keys_existing(model=Snapshot, prefix="ccp:")

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def handle(self, row: Row) -> Created:
        if row.key in self.done:
            raise RowSkipped("already imported")
        kind, payload = row.data
        return self._post(payload) if kind == "post" else self._photo(payload)

    def _post(self, photo_id: int) -> Created:
        post = self.ccp.load_post(self.root, photo_id, self.names)
        if not post.snapshot_path.exists():
            raise RowFailed(f"photo {post.snapshot_path} is missing")
        snapshot_image = validate_image_upload(post.snapshot_path)
        crops = self.ccp.item_images(post)
        entries, created_keys = [], []
        for spec, crop in zip(post.items, crops, strict=True):
            clean = clean_pil_image(crop, name=f"{photo_id:04d}-{spec.label}.jpg")
            existing = Item.objects.filter(source_key=item_key(photo_id, spec.label)).first() or find_duplicate(
                model=Item, content_hash=clean.content_hash
            )
            if existing is not None:
                entries.append(existing)
                continue
            entries.append(
                NewItem(
                    image=clean,
                    name=f"{spec.label} (CCP {photo_id:04d})",
                    category=category_get_or_create(path=spec.label),
                    source_key=item_key(photo_id, spec.label),
                )
            )
            created_keys.append(item_key(photo_id, spec.label))
        snapshot = post_create(
            image=snapshot_image,
            title=f"CCP {photo_id:04d}",
            items=entries,
            tags=[tag_get_or_create(name=spec.label) for spec in post.items],
            source_key=post_key(photo_id),
            enqueue=False,
        )
        item_ids = list(Item.objects.filter(source_key__in=created_keys).values_list("pk", flat=True))
        return Created(item_ids=item_ids, snapshot_ids=[snapshot.pk])

    def _photo(self, photo) -> Created:
        labels = sorted({name for name in photo.labels if name and name not in self.ccp.EXCLUDED_LABELS})
        snapshot = post_create(
            image=validate_image_upload(photo.path),
            title=f"CCP {photo.photo_id:04d}",
            tags=[tag_get_or_create(name=label) for label in labels],
            source_key=photo_key(photo.photo_id),
            enqueue=False,
        )
        return Created(snapshot_ids=[snapshot.pk])
