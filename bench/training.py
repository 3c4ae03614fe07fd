"""Training time per epoch, head-only on CPU (stage 1 of ``ml.training``), beside its baseline.

Baseline: one pass of the frozen backbone over the same records (``ml.training.cache_features``,
which stage 1 runs once and then reuses). An end-to-end epoch would cost at least that pass; the
head-only epoch runs on the cached maps, and the ratio says how much cheaper it is.
"""

from __future__ import annotations

import re
import time

import numpy as np

from bench.context import Context
from bench.report import fmt, ratio

EPOCH = re.compile(r"^epoch (\d+)/(\d+)")


def run(ctx: Context) -> dict:
    from ml.cli import ccp_records
    from ml.config import ModelConfig
    from ml.model import Embedder
    from ml.training import TrainOptions, cache_features, train

    plan = ctx.plan
    records = ccp_records(str(ctx.ccp), "train", str(ctx.work_dir / "crops"), limit=plan.train_posts)
    posts = len({r[1] for r in records})
    config = ModelConfig(backbone=ctx.backbone, weights="imagenet", loss="arcface")
    options = TrainOptions(epochs=plan.train_epochs, item_views=1, snapshot_views=1, checkpoint=False)
    embedder = Embedder.build(config, cache_dir=ctx.weights_cache)
    cache_dir = ctx.work_dir / "features"
    n_items = sum(r[2] == "item" for r in records)
    n_snaps = len(records) - n_items
    ctx.log(f"training: caching feature maps of {n_snaps} snapshots + {n_items} items (baseline pass)")
    started = time.monotonic()
    cache_features(
        embedder,
        records,
        cache_dir,
        item_views=1,
        snapshot_views=1,
        seed=0,
        batch_size=options.batch_size,
        progress=ctx.progress("backbone pass"),
    )
    backbone_pass = time.monotonic() - started

    marks: list[tuple[int, float]] = []
    train_started = time.monotonic()

    def progress(fraction: float, message: str) -> None:
        match = EPOCH.match(message)
        if match:
            marks.append((int(match.group(1)), time.monotonic()))
            ctx.log(f"training: {message}")

    metrics = train(
        records,
        config,
        ctx.work_dir / "train-artifact",
        progress=progress,
        seed=0,
        options=options,
        cache_dir=cache_dir,
        embedder=embedder,
    )
    times = [marks[i][1] - marks[i - 1][1] for i in range(1, len(marks))]
    first = marks[0][1] - train_started if marks else None
    steady = float(np.mean(times)) if times else None
    steps = metrics["steps"] // max(1, metrics["epochs"])
    result = {
        "posts": posts,
        "snapshots": n_snaps,
        "items": n_items,
        "backbone_pass_s": backbone_pass,
        "first_epoch_s": first,
        "epoch_s": steady,
        "epoch_times_s": times,
        "steps_per_epoch": steps,
        "train_map21_before": metrics.get("train_map21_before"),
        "train_map21_after": metrics.get("train_map21_after"),
    }
    ctx.report.results["training"] = result
    sec = ctx.report.section("2e. Training time per epoch (head-only, CPU)")
    sec.text(
        f"`ml.training.train` (stage 1: frozen {ctx.backbone}, CGD head, ArcFace) on **{posts} CCP train posts** "
        f"({n_snaps} snapshots, {n_items} item crops, one view each), {metrics['epochs']} epochs of {steps} steps "
        f"(32 posts per batch). Baseline: one frozen-backbone pass over the same images "
        f"(`ml.training.cache_features`), the least an end-to-end epoch would cost."
    )
    sec.table(
        ["measurement", "seconds", "images/s", "vs baseline"],
        [
            [
                "baseline: backbone pass over the records",
                fmt(backbone_pass),
                fmt(len(records) / backbone_pass),
                "x1.00",
            ],
            ["first epoch (graph tracing, train-set score)", fmt(first), "", ratio(first, backbone_pass)],
            [f"epoch (mean of epochs 2..{metrics['epochs']})", fmt(steady), "", ratio(steady, backbone_pass, 3)],
            ["step (one batch)", fmt(steady / steps if steady else None, 2), "", ""],
        ],
    )
    sec.text(
        f"The full train split (600 posts) runs 19 steps per epoch. Train-set mAP@21 (view 0) "
        f"{fmt(metrics.get('train_map21_before'))} → {fmt(metrics.get('train_map21_after'))} in this short run "
        f"(a timing run, not a model to use)."
    )
    return result
