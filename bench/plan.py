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


QUICK = Plan(
    name="quick",
    val_posts=40,
    distractors=60,
    gallery=400,
    picture_rows=8,
    category_min_items=4,
    catalog_posts=24,
    catalog_products=48,
    throughput_items=48,
    throughput_snapshots=12,
    scales=(10_000,),
    ef_values=(10, 40, 100, 200),
    queries=30,
    upload_runs=8,
    clients=32,
    load_seconds=10.0,
    train_posts=64,
    train_epochs=3,
)

FULL = Plan(
    name="full",
    val_posts=None,
    distractors=600,
    gallery=None,
    picture_rows=8,
    category_min_items=8,
    catalog_posts=200,
    catalog_products=400,
    throughput_items=256,
    throughput_snapshots=64,
    scales=(10_000, 100_000),
    ef_values=(10, 20, 40, 80, 160, 320),
    queries=60,  # the exact baseline costs seconds per query at 100k (it bounds the hour)
    upload_runs=30,
    clients=32,
    load_seconds=30.0,
    train_posts=None,
    train_epochs=4,
)

# A code-path check for developers (a minute or two): the numbers mean nothing at this size.
SMOKE = Plan(
    name="smoke",
    val_posts=6,
    distractors=4,
    gallery=24,
    picture_rows=3,
    category_min_items=2,
    catalog_posts=4,
    catalog_products=6,
    throughput_items=8,
    throughput_snapshots=2,
    scales=(2_000,),
    ef_values=(10, 40),
    queries=5,
    upload_runs=2,
    clients=4,
    load_seconds=2.0,
    train_posts=8,
    train_epochs=3,
)

PLANS = {"quick": QUICK, "full": FULL, "smoke": SMOKE}
