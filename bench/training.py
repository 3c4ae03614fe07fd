"""Training time per epoch, head-only on CPU (stage 1 of ``ml.training``), beside its baseline.

Baseline: one pass of the frozen backbone over the same records (``ml.training.cache_features``,
which stage 1 runs once and then reuses). An end-to-end epoch would cost at least that pass; the
head-only epoch runs on the cached maps, and the ratio says how much cheaper it is.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from bench.context import Context
from bench.report import fmt, ratio

EPOCH = re.compile(r"^epoch (\d+)/(\d+)")


def run(ctx: Context) -> dict:
    from ml.cli import ccp_records
    from ml.config import ModelConfig
    from ml.model import Embedder
    from ml.training import TrainOptions

    plan = ctx.plan
    records = ccp_records(str(ctx.ccp), "train", str(ctx.work_dir / "crops"), limit=plan.train_posts)
    config = ModelConfig(backbone=ctx.backbone, weights="imagenet", loss="arcface")
    options = TrainOptions(epochs=plan.train_epochs, item_views=1, snapshot_views=1, checkpoint=False)
    embedder = Embedder.build(config, cache_dir=ctx.weights_cache)
    cache_dir = ctx.work_dir / "features"
    n_items = sum(r[2] == "item" for r in records)
    result = {"posts": len({r[1] for r in records}), "snapshots": len(records) - n_items, "items": n_items}
    backbone_pass = _backbone_pass(ctx, embedder, records, cache_dir, options, result)
    marks, train_started, metrics = _train(ctx, embedder, records, config, cache_dir, options)
    times = [marks[i][1] - marks[i - 1][1] for i in range(1, len(marks))]
    result.update(
        {
            "backbone_pass_s": backbone_pass,
            "first_epoch_s": marks[0][1] - train_started if marks else None,
            "epoch_s": float(np.mean(times)) if times else None,
            "epoch_times_s": times,
            "steps_per_epoch": metrics["steps"] // max(1, metrics["epochs"]),
            "train_map21_before": metrics.get("train_map21_before"),
            "train_map21_after": metrics.get("train_map21_after"),
        }
    )
    ctx.report.results["training"] = result
    _write(ctx, result, metrics, images=len(records))
    return result


def _backbone_pass(ctx: Context, embedder, records, cache_dir: Path, options, counts: dict) -> float:
    """The baseline: seconds for one frozen-backbone pass over the records (cached for stage 1 to reuse)."""
    from ml.training import cache_features

    ctx.log(
        f"training: caching feature maps of {counts['snapshots']} snapshots + {counts['items']} items (baseline pass)"
    )
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
    return time.monotonic() - started


def _train(ctx: Context, embedder, records, config, cache_dir: Path, options):
    """Stage 1 on the cached maps; returns (epoch number, time) marks, the start time and train's metrics."""
    from ml.training import train

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
    return marks, train_started, metrics


def _write(ctx: Context, result: dict, metrics: dict, *, images: int) -> None:
    backbone_pass, first, steady = result["backbone_pass_s"], result["first_epoch_s"], result["epoch_s"]
    steps, epochs = result["steps_per_epoch"], metrics["epochs"]
    sec = ctx.report.section("2e. Training time per epoch (head-only, CPU)")
    sec.text(
        f"`ml.training.train` (stage 1: frozen {ctx.backbone}, CGD head, ArcFace) on **{result['posts']} CCP train "
        f"posts** ({result['snapshots']} snapshots, {result['items']} item crops, one view each), {epochs} epochs "
        f"of {steps} steps (32 posts per batch). Baseline: one frozen-backbone pass over the same images "
        f"(`ml.training.cache_features`), the least an end-to-end epoch would cost."
    )
    sec.table(
        ["measurement", "seconds", "images/s", "vs baseline"],
        [
            ["baseline: backbone pass over the records", fmt(backbone_pass), fmt(images / backbone_pass), "x1.00"],
            ["first epoch (graph tracing, train-set score)", fmt(first), "", ratio(first, backbone_pass)],
            [f"epoch (mean of epochs 2..{epochs})", fmt(steady), "", ratio(steady, backbone_pass, 3)],
            ["step (one batch)", fmt(steady / steps if steady else None, 2), "", ""],
        ],
    )
    sec.text(
        f"The full train split (600 posts) runs 19 steps per epoch. Train-set mAP@21 (view 0) "
        f"{fmt(metrics.get('train_map21_before'))} → {fmt(metrics.get('train_map21_after'))} in this short run "
        f"(a timing run, not a model to use)."
    )
