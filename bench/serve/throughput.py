"""Section 2a: embedding throughput, in-process library rates beside one real Celery worker's."""

from __future__ import annotations

import time
from pathlib import Path

from bench import plots
from bench.context import Context
from bench.report import fmt, ratio
from bench.serve.catalog import Catalog

KINDS = ("item", "snapshot")


def measure(ctx: Context, catalog: Catalog) -> dict:
    """In-process library rates, then one worker's (:func:`bench.serve.worker.start_worker` must be running)."""
    from django.conf import settings

    from recommender.models import ModelVersion

    batch = settings.ML_EMBED_BATCH_SIZE
    chunk = settings.CATALOG_EMBED_BATCH_SIZE
    version = ModelVersion.objects.get(pk=catalog.version_id)
    rates, ids = _library_rates(ctx, version, batch)
    _worker_rates(ctx, rates, ids, chunk)
    result: dict = {
        "batch": batch,
        "model": catalog.model_name,
        "reindex_s": catalog.reindex_s,
        "reindex_images": catalog.images,
        **rates,
    }
    ctx.report.results["throughput"] = result
    _write(ctx, catalog, version, result, chunk)
    return result


def _library_rate(embedder, kind: str, paths: list[Path], batch: int) -> float:
    from workers.ml_runtime import open_image

    embed = embedder.embed_snapshots if kind == "snapshot" else embedder.embed_items
    started = time.monotonic()
    for start in range(0, len(paths), batch):
        embed([open_image(p) for p in paths[start : start + batch]])
    return len(paths) / (time.monotonic() - started)


def _library_rates(ctx: Context, version, batch: int) -> tuple[dict[str, dict], dict[str, list[int]]]:
    """Per kind: images/s batched and one at a time in this process, and the ids of the images measured."""
    from catalog.models import Item, Snapshot
    from workers.ml_runtime import load_embedder

    embedder = load_embedder(version)
    sizes = {"item": (Item, ctx.plan.throughput_items), "snapshot": (Snapshot, ctx.plan.throughput_snapshots)}
    rates: dict[str, dict] = {}
    ids: dict[str, list[int]] = {}
    for kind, (model, n) in sizes.items():
        rows = list(model.objects.order_by("pk")[:n])
        paths = [Path(r.image.path) for r in rows]
        _library_rate(embedder, kind, paths[:batch], batch)  # warm-up: graph tracing at the batch shape
        _library_rate(embedder, kind, paths[:1], 1)
        single = paths[: max(4, min(len(paths), 2 * batch))]
        rates[kind] = {
            "n": len(paths),
            "library_batched": _library_rate(embedder, kind, paths, batch),
            "library_single": _library_rate(embedder, kind, single, 1),
        }
        ids[kind] = [r.pk for r in rows]
        ctx.log(
            f"library {kind}s: {rates[kind]['library_batched']:.1f}/s batched, "
            f"{rates[kind]['library_single']:.1f}/s one at a time"
        )
    return rates, ids


def _worker_rates(ctx: Context, rates: dict[str, dict], ids: dict[str, list[int]], chunk: int) -> None:
    """Adds one worker's images/s to ``rates``: the same images as tasks of ``chunk`` ids on its queue."""
    from workers.tasks import embed_items, embed_snapshots

    tasks = {"item": embed_items, "snapshot": embed_snapshots}
    embed_items.delay(ids["item"][:2]).get(timeout=300)  # load model; the queue is the registry's route
    embed_snapshots.delay(ids["snapshot"][:1]).get(timeout=300)
    for kind, task in tasks.items():
        started = time.monotonic()
        chunks = [ids[kind][i : i + chunk] for i in range(0, len(ids[kind]), chunk)]
        pending = [task.delay(part) for part in chunks]
        done = sum(r.get(timeout=1800)["embedded"] for r in pending)
        seconds = time.monotonic() - started
        rates[kind]["worker"] = done / seconds
        rates[kind]["worker_embedded"] = done
        ctx.log(f"worker {kind}s: {done} in {seconds:.1f}s")


def _write(ctx: Context, catalog: Catalog, version, result: dict, chunk: int) -> None:
    batch = result["batch"]
    sec = ctx.report.section("2a. Embedding throughput (CPU)")
    sec.text(
        f"Model: {catalog.model_name} ({version.dim}-d, {version.max_regions} vectors per snapshot). Images: the "
        f"scratch catalog's stored pictures (CCP val snapshots at 550×825, their item crops), decoded from disk. "
        f"*Library*: `Embedder.embed_items` / `embed_snapshots` in this process, batches of {batch} "
        f"(`ML_EMBED_BATCH_SIZE`), beside the same call one image at a time (baseline). *Worker*: one real "
        f"`celery worker -c 1` running `workers.embed_items` / `workers.embed_snapshots` tasks of {chunk} ids "
        f"(decode, embed, write the vectors to PostgreSQL), beside the library's batched rate."
    )
    headers = [
        "images",
        "n",
        "one at a time /s",
        f"batched ({batch}) /s",
        "batched vs one",
        "one worker /s",
        "worker vs library",
    ]
    sec.table(headers, [_row(kind, result[kind]) for kind in KINDS])
    sec.text(
        f"Re-index of the scratch catalog ({catalog.images} images) for this model and switch "
        f"(`workers.versioning.switch_to`, in this process): **{catalog.reindex_s:.0f} s**."
    )
    path = plots.grouped_bars(
        ctx.out_dir / "throughput.png",
        groups=[f"{k}s" for k in KINDS],
        series={
            "one at a time": [result[k]["library_single"] for k in KINDS],
            f"library, batch {batch}": [result[k]["library_batched"] for k in KINDS],
            "one Celery worker": [result[k].get("worker") for k in KINDS],
        },
        ylabel="images / s",
        title="Embedding throughput on this CPU",
    )
    sec.figure(path.name, "Embedding throughput: one at a time vs batched vs one worker")


def _row(kind: str, r: dict) -> list:
    single, batched, worker = r["library_single"], r["library_batched"], r.get("worker")
    return [f"{kind}s", r["n"], fmt(single), fmt(batched), ratio(batched, single), fmt(worker), ratio(worker, batched)]
