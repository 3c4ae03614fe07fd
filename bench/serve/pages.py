"""Section 2d: the pages under concurrent load, beside the smallest database-backed answer."""

from __future__ import annotations

import random

from bench.context import Context
from bench.report import fmt, ratio
from bench.serve.catalog import Catalog
from bench.serve.load import load
from bench.serve.web import request

BASELINE = ("baseline /api/items?page_size=1", "/api/items?page_size=1")


def measure(ctx: Context, catalog: Catalog, port: int, *, server_workers: int, server_threads: int) -> dict:
    """Requests/s and latency of the baseline, then of the pages in rotation, each for the plan's load time."""
    plan = ctx.plan
    targets = _targets(catalog)
    for name, path in targets[:4]:  # every page answers before it is measured
        status, body = request(port, "GET", path)
        if status != 200:
            raise RuntimeError(f"{name} {path} answered HTTP {status}: {body[:300]!r}")
    ctx.log(f"load: baseline, {plan.clients} clients x {plan.load_seconds:.0f}s")
    baseline = load(port, [BASELINE], clients=plan.clients, seconds=plan.load_seconds)
    ctx.log(f"load: pages, {plan.clients} clients x {plan.load_seconds:.0f}s")
    mixed = load(port, targets, clients=plan.clients, seconds=plan.load_seconds)
    base = baseline.summary()
    result = {"baseline": base, "pages": mixed.summary(), "per_page": {n: mixed.summary([n]) for n in dict(targets)}}
    ctx.report.results["pages"] = result
    _write(ctx, catalog, result, server_workers=server_workers, server_threads=server_threads)
    return result


def _targets(catalog: Catalog) -> list[tuple[str, str]]:
    """(name, path) in rotation: the two tabs and random snapshot / item pages."""
    rng = random.Random(0)
    targets = []
    for _ in range(25):
        targets += [
            ("snapshot tab /", "/"),
            ("item tab /items/", "/items/"),
            ("snapshot page", f"/snapshots/{rng.choice(catalog.snapshot_ids)}/"),
            ("item page", f"/items/{rng.choice(catalog.item_ids)}/"),
        ]
    return targets


def _write(ctx: Context, catalog: Catalog, result: dict, *, server_workers: int, server_threads: int) -> None:
    plan = ctx.plan
    sec = ctx.report.section("2d. Pages under load")
    sec.text(
        f"{plan.clients} concurrent clients (Python threads on keep-alive connections, in the bench process on the "
        f"same 2 cores as the server) for {plan.load_seconds:.0f} s per run against gunicorn ({server_workers} "
        f"processes × {server_threads} threads, DEBUG settings, the scratch catalog: {len(catalog.snapshot_ids)} "
        f"snapshots, {len(catalog.item_ids)} items). *Pages*: the two tabs and random snapshot / item pages "
        f"(each with its 6 recommendations), in rotation. Baseline: the smallest database-backed answer on the same "
        f"server (`/api/items?page_size=1`). Errors: non-200 answers and failed connections."
    )
    base, mixed = result["baseline"], result["pages"]
    rows = [
        _row("baseline `/api/items?page_size=1`", base, "x1.00"),
        _row("**all pages, mixed**", mixed, ratio(mixed["rps"], base["rps"])),
        *(_row(f"· {name}", r, "") for name, r in result["per_page"].items()),
    ]
    sec.table(["target", "requests/s", "p50 ms", "p95 ms", "errors", "req/s vs baseline"], rows)


def _row(label: str, summary: dict, vs_baseline: str) -> list:
    return [label, fmt(summary["rps"]), fmt(summary["p50"]), fmt(summary["p95"]), summary["errors"], vs_baseline]
