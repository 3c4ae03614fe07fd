"""Section 2c: upload queries end to end over HTTP, beside the by-id recommendation on the same server."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from bench.context import Context
from bench.report import fmt, ratio
from bench.serve.catalog import Catalog
from bench.serve.web import multipart, request
from bench.stats import percentile

UPLOAD_TARGET_P95_MS = 300.0  # issue 5
QUERY_KIND = {"snapshot_to_items": "snapshot", "item_to_snapshots": "item"}  # the uploaded photo's kind
WARM_UPS = 2  # the first uploads warm the worker's model and the web side's worker check


def measure(ctx: Context, catalog: Catalog, port: int) -> dict:
    """Upload queries end to end (HTTP in, worker, selector, 6 results out) beside the by-id recommendation."""
    from catalog.models import Item

    runs = ctx.plan.upload_runs
    photos = sorted((ctx.ccp / "photos").glob("*.jpg"))[780:800]  # val photos (any picture would do)
    products = [Path(p.image.path) for p in Item.objects.filter(source_key__startswith="clothing:")[:20]]
    if not products:
        products = [Path(p.image.path) for p in Item.objects.all()[:20]]
    cases = {
        "snapshot_to_items": (photos, "/api/snapshots/{}/items", catalog.snapshot_ids),
        "item_to_snapshots": (products, "/api/items/{}/snapshots", catalog.item_ids),
    }
    result = {}
    for direction, (files, by_id, ids) in cases.items():
        times, counts = _upload_times(port, direction, files, runs)
        by_id_times = _by_id_times(port, by_id, ids, runs)
        result[direction] = {
            "p50": percentile(times, 50),
            "p95": percentile(times, 95),
            "results": min(counts),
            "by_id_p50": percentile(by_id_times, 50),
            "by_id_p95": percentile(by_id_times, 95),
            "runs": len(times),
        }
        ctx.log(f"upload {direction}: p50 {result[direction]['p50']:.0f} ms, p95 {result[direction]['p95']:.0f} ms")
    ctx.report.results["upload"] = result
    _write(ctx, catalog, result)
    return result


def _upload_times(port: int, direction: str, files: list[Path], runs: int) -> tuple[list[float], list[int]]:
    """``POST /api/query`` with ``files`` in turn: latencies (ms) and result counts after the warm-ups."""
    times, counts = [], []
    for n in range(runs + WARM_UPS):
        path = files[n % len(files)]
        body, content_type = multipart({"direction": direction}, "image", path.name, path.read_bytes())
        started = time.perf_counter()
        status, payload = request(port, "POST", "/api/query", body, {"Content-Type": content_type})
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"upload {direction} answered HTTP {status}: {payload[:300]!r}")
        data = json.loads(payload)
        if n >= WARM_UPS:
            times.append(elapsed)
            counts.append(len(data.get("items") or data.get("snapshots") or []))
    return times, counts


def _by_id_times(port: int, by_id: str, ids: list[int], runs: int) -> list[float]:
    """The baseline: latencies (ms) of the by-id recommendation of random stored images."""
    rng = random.Random(0)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        status, payload = request(port, "GET", by_id.format(rng.choice(ids)))
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {by_id} answered HTTP {status}: {payload[:300]!r}")
    return times


def _write(ctx: Context, catalog: Catalog, result: dict) -> None:
    sec = ctx.report.section("2c. Upload query end to end")
    sec.text(
        f"`POST /api/query` (multipart photo) to gunicorn on 127.0.0.1: validate, `workers.embed_query` on the "
        f"*queries* queue (one real worker, model loaded), the selector, JSON out; {ctx.plan.upload_runs} runs per "
        f"direction after {WARM_UPS} warm-ups, sequential. Baseline: the by-id recommendation of a stored image "
        f"(`GET /api/snapshots/{{id}}/items`, `/api/items/{{id}}/snapshots`) on the same server: the cost of "
        f"everything but describing the photo. Model: {catalog.model_name}. Snapshots: CCP photos 550×825; "
        f"items: clothing-dataset product photos 400×533."
    )
    single = ctx.report.results.get("throughput", {})
    rows = [_row(d, r, single.get(QUERY_KIND[d], {}).get("library_single")) for d, r in result.items()]
    sec.table(
        [
            "direction",
            "upload p50 ms",
            "upload p95 ms",
            "results",
            "by-id p50 ms",
            "by-id p95 ms",
            "embedding one image alone ms (2a)",
            "upload vs by-id (p50)",
            f"p95 < {UPLOAD_TARGET_P95_MS:g} ms",
        ],
        rows,
    )


def _row(direction: str, r: dict, single_rate: float | None) -> list:
    """One direction's table row; ``single_rate``: 2a's one-image-at-a-time embedding rate (images/s)."""
    met = r["p95"] is not None and r["p95"] < UPLOAD_TARGET_P95_MS
    return [
        direction.replace("_", " "),
        fmt(r["p50"], 0),
        fmt(r["p95"], 0),
        r["results"],
        fmt(r["by_id_p50"], 1),
        fmt(r["by_id_p95"], 1),
        fmt(1000 / single_rate if single_rate else None, 0),
        ratio(r["p50"], r["by_id_p50"], 1),
        "met" if met else "missed",
    ]
