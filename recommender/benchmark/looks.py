"""The garment scheme's scratch catalog: items in the canonical categories, looks with their garments.

How the data is made (all from one seeded generator):

- Every garment group (``catalog.taxonomy.GROUP_CATEGORIES``) has a random unit direction, and
  ``clusters`` sub-clusters (product lines) spread over the groups by their share of items; a
  sub-cluster's centre is its group's direction plus an equally long random one (cosine ~0.5
  between two lines of a group, ~0 across groups).
- Items: a group drawn with a shop's skew (:data:`GROUP_SHARES`: many shoes, tops, bags and
  trousers, few belts and hats), a category drawn among the group's canonical categories (their
  subtrees included), a line of the group; the vector is the line's centre plus noise.
- Looks: 3-8 garments drawn plausibly (:func:`outfit`: a top, or a dress; trousers, jeans, a
  skirt or shorts unless a dress; shoes or boots; often a bag, sometimes outerwear; then hats,
  belts, scarves, legwear, jewellery). Each garment is worn from a line of its group, picked as
  often as the line has items; its vector (region 1..n) is that line's centre plus more noise
  than an item's, and region 0, the whole photo, blends the garments. Boxes sit where the group
  is worn (a hat on top, shoes at the bottom), jittered; the outline is the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from catalog.embedding_targets import ITEM, SNAPSHOT
from catalog.models import SnapshotGarment
from catalog.selectors import category_ids_for_group
from catalog.services.taxonomy import category_tree_ensure
from catalog.taxonomy import GROUP_CATEGORIES
from ml.config import GARMENTS, ModelConfig
from recommender.benchmark.scratch import (
    BACKBONE,
    CREATE_BATCH,
    ScratchCatalog,
    unit,
    vector_copy,
)
from recommender.models import ModelVersion

MIN_GARMENTS, MAX_GARMENTS = 3, 8
ITEM_NOISE, GARMENT_NOISE, WHOLE_NOISE = 0.75, 0.9, 0.9  # noise norm against a unit centre

# A fashion shop's items per garment group, in parts of 100.
GROUP_SHARES: dict[str, float] = {
    "shoes": 16,
    "tops": 16,
    "bag": 12,
    "trousers": 9,
    "dress": 9,
    "outerwear": 8,
    "jeans": 7,
    "knitwear": 7,
    "skirt": 5,
    "shorts": 3,
    "boots": 3,
    "accessories": 1.5,
    "legwear": 1.5,
    "scarf": 1,
    "hat": 1,
    "belt": 1,
}
EXTRAS = ("hat", "belt", "scarf", "accessories", "legwear")

# Where a group is worn in the photo: (top, bottom, left, right) in fractions, before jitter.
BOXES: dict[str, tuple[float, float, float, float]] = {
    "hat": (0.0, 0.12, 0.36, 0.64),
    "scarf": (0.12, 0.26, 0.34, 0.66),
    "tops": (0.15, 0.48, 0.25, 0.75),
    "knitwear": (0.15, 0.5, 0.22, 0.78),
    "outerwear": (0.13, 0.64, 0.17, 0.83),
    "dress": (0.15, 0.78, 0.25, 0.75),
    "accessories": (0.36, 0.44, 0.14, 0.26),
    "bag": (0.4, 0.62, 0.62, 0.9),
    "belt": (0.45, 0.5, 0.33, 0.67),
    "trousers": (0.46, 0.9, 0.3, 0.7),
    "jeans": (0.46, 0.9, 0.3, 0.7),
    "skirt": (0.46, 0.72, 0.28, 0.72),
    "shorts": (0.46, 0.62, 0.3, 0.7),
    "legwear": (0.6, 0.92, 0.35, 0.65),
    "boots": (0.74, 0.99, 0.3, 0.7),
    "shoes": (0.88, 0.99, 0.3, 0.7),
}

assert set(GROUP_SHARES) == set(GROUP_CATEGORIES) == set(BOXES)


def garment_version_create(*, dim: int) -> ModelVersion:
    """The scratch version of the garment scheme: region 0 the whole photo, 1.. one row per garment."""
    return ModelVersion.objects.create(
        name=f"bench-garments-{int(time.time())}",
        backbone=BACKBONE,
        dim=dim,
        max_regions=ModelConfig().max_rows(GARMENTS),
        status="evaluating",
        config={"regions": GARMENTS},
    )


def outfit(rng: np.random.Generator) -> list[str]:
    """The garment groups of one look, 3-8 of them, each group at most once."""
    count = int(rng.choice(np.arange(MIN_GARMENTS, MAX_GARMENTS + 1), p=[0.2, 0.3, 0.25, 0.13, 0.07, 0.05]))
    if rng.random() < 0.25:
        worn = ["dress"]
    else:
        worn = [str(rng.choice(["tops", "knitwear"], p=[0.8, 0.2]))]
        worn.append(str(rng.choice(["trousers", "jeans", "skirt", "shorts"], p=[0.35, 0.35, 0.2, 0.1])))
    worn.append("shoes" if rng.random() < 0.8 else "boots")
    likely = [g for g, p in (("bag", 0.65), ("outerwear", 0.35)) if rng.random() < p]
    others = [g for g in ("bag", "outerwear", "knitwear", *EXTRAS) if g not in worn and g not in likely]
    rng.shuffle(others)
    return (worn + likely + others)[:count]


def garment_box(group: str, rng: np.random.Generator) -> list[float]:
    """(left, top, right, bottom) in fractions: where the group is worn, jittered."""
    top, bottom, left, right = (np.asarray(BOXES[group]) + rng.normal(scale=0.02, size=4)).clip(0.0, 1.0)
    top, bottom = min(top, bottom - 0.02), max(bottom, top + 0.02)
    left, right = min(left, right - 0.02), max(right, left + 0.02)
    return [float(v) for v in (max(0.0, left), max(0.0, top), min(1.0, right), min(1.0, bottom))]


@dataclass(frozen=True)
class Lines:
    """The product lines: ``centres`` (lines, dim), the group of each line, the lines of each group."""

    centres: np.ndarray
    group_of: list[str]
    of_group: dict[str, np.ndarray]


def lines_make(rng: np.random.Generator, *, clusters: int, dim: int) -> Lines:
    groups = list(GROUP_SHARES)
    shares = np.asarray([GROUP_SHARES[g] for g in groups]) / sum(GROUP_SHARES.values())
    per_group = np.maximum(1, np.round(shares * clusters)).astype(int)
    directions = unit(rng.normal(size=(len(groups), dim)))
    group_of = [g for g, n in zip(groups, per_group, strict=True) for _ in range(n)]
    own = unit(rng.normal(size=(len(group_of), dim)))
    centres = unit(directions[[groups.index(g) for g in group_of]] + own)
    of_group = {g: np.flatnonzero(np.asarray(group_of) == g) for g in groups}
    return Lines(centres=centres, group_of=group_of, of_group=of_group)


@dataclass
class GarmentCatalog:
    """Fills the garment version's items (with categories), looks, garments and vectors."""

    base: ScratchCatalog

    def fill_items(self, count: int, lines: Lines) -> tuple[list[int], np.ndarray]:
        """``count`` items, each in a canonical category of its group and near one of its lines."""
        rng = self.base.rng
        category_tree_ensure()  # the canonical tree; existing rows are kept as they are
        groups = list(GROUP_SHARES)
        shares = np.asarray([GROUP_SHARES[g] for g in groups]) / sum(GROUP_SHARES.values())
        kinds = {g: np.asarray(category_ids_for_group(g)) for g in groups}
        group_idx = rng.choice(len(groups), size=count, p=shares)
        item_lines = np.empty(count, dtype=np.int64)
        categories = np.empty(count, dtype=np.int64)
        for g, group in enumerate(groups):
            chosen = np.flatnonzero(group_idx == g)
            item_lines[chosen] = rng.choice(lines.of_group[group], size=len(chosen))
            categories[chosen] = rng.choice(kinds[group], size=len(chosen))
        ids = self.base.create_items(count, categories)
        self.base.copy_vectors(ITEM, ids, lambda idx: lines.centres[item_lines[idx]], noise=ITEM_NOISE)
        return ids, item_lines

    def fill_snapshots(self, count: int, lines: Lines, item_lines: np.ndarray) -> list[int]:
        """``count`` published looks, each with 1 + n region rows and its n garments (3 <= n <= 8)."""
        rng, version, dim = self.base.rng, self.base.version, self.base.dim
        ids = self.base.create_snapshots(count)
        # A line is worn as often as it has items.
        weight = np.bincount(item_lines, minlength=len(lines.centres)).astype(np.float64) + 1.0
        garments: list[SnapshotGarment] = []

        def rows(start: int, stop: int):
            for n in range(start, stop):
                groups = outfit(rng)
                worn = []
                for group in groups:
                    pool = lines.of_group[group]
                    worn.append(int(rng.choice(pool, p=weight[pool] / weight[pool].sum())))
                centres = lines.centres[worn]  # (garments, dim)
                vectors = unit(centres + rng.normal(scale=GARMENT_NOISE / np.sqrt(dim), size=centres.shape))
                whole = unit(vectors.sum(axis=0) + rng.normal(scale=WHOLE_NOISE / np.sqrt(dim), size=dim))
                yield int(ids[n]), [whole, *vectors]
                for region, group in enumerate(groups, start=1):
                    box = garment_box(group, rng)
                    left, top, right, bottom = box
                    garments.append(
                        SnapshotGarment(
                            snapshot_id=int(ids[n]),
                            model_version_id=version.pk,
                            region=region,
                            group=group,
                            box=box,
                            outline=[[[left, top], [right, top], [right, bottom], [left, bottom]]],
                            confidence=float(rng.uniform(0.6, 0.97)),
                            area=float((right - left) * (bottom - top) * 0.7),
                        )
                    )

        vector_copy(SNAPSHOT, version, rows, len(ids), progress=self.base.progress, label="look + garment vectors")
        self.base.progress("garment rows", 0, len(garments))
        for start in range(0, len(garments), CREATE_BATCH):
            SnapshotGarment.objects.bulk_create(garments[start : start + CREATE_BATCH])
            done = min(len(garments), start + CREATE_BATCH)
            self.base.progress("garment rows", done, len(garments))
        return ids
