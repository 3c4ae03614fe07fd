"""How much each mode measures. ``quick``: under ten minutes on a 2-core CPU; ``full``: under an hour."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    # quality (CCP-Posts val): posts (None = all 200), tag-only distractor snapshots, gallery products (None = all)
    val_posts: int | None
    distractors: int
    gallery: int | None
    # pictures: query rows per grid
    picture_rows: int
    # breakdown: smallest number of val items a category needs to get its own row
    category_min_items: int
    # scratch catalog: CCP val posts imported (their snapshots and items), clothing products imported
    catalog_posts: int
    catalog_products: int
    # embedding throughput: images per measurement
    throughput_items: int
    throughput_snapshots: int
    # selector scale: item counts (snapshots = items / 5, 4 regions each), ef_search sweep, queries per case
    scales: tuple[int, ...]
    ef_values: tuple[int, ...]
    queries: int
    # serving: upload runs per direction, load clients and seconds per target
    upload_runs: int
    clients: int
    load_seconds: float
    # training time per epoch: train posts (None = all 600) and epochs (>= 3: the first is warm-up)
    train_posts: int | None
    train_epochs: int


# Each mode's sizes side by side. ``smoke`` is a code-path check for developers (a minute or two):
# its numbers mean nothing at that size.
MODES = ("quick", "full", "smoke")
_SIZES: dict[str, tuple] = {
    "val_posts": (40, None, 6),
    "distractors": (60, 600, 4),
    "gallery": (400, None, 24),
    "picture_rows": (8, 8, 3),
    "category_min_items": (4, 8, 2),
    "catalog_posts": (24, 200, 4),
    "catalog_products": (48, 400, 6),
    "throughput_items": (48, 256, 8),
    "throughput_snapshots": (12, 64, 2),
    "scales": ((10_000,), (10_000, 100_000), (2_000,)),
    "ef_values": ((10, 40, 100, 200), (10, 20, 40, 80, 160, 320), (10, 40)),
    "queries": (30, 60, 5),  # full: the exact baseline costs seconds per query at 100k (it bounds the hour)
    "upload_runs": (8, 30, 2),
    "clients": (32, 32, 4),
    "load_seconds": (10.0, 30.0, 2.0),
    "train_posts": (64, None, 8),
    "train_epochs": (3, 4, 3),
}
PLANS = {mode: Plan(name=mode, **{k: v[i] for k, v in _SIZES.items()}) for i, mode in enumerate(MODES)}
QUICK, FULL, SMOKE = (PLANS[mode] for mode in MODES)
