"""Section 2b: selector latency and recall@6 at 10k / 100k items, over ef_search, with and without a filter.

Reuses the recommender's benchmark command (``manage.py bench_recommender``): its clustered
vector fill, style tagging and plan check, all in one transaction rolled back at the end, and the
recommender's own selectors. What it adds: each query's exact answer is computed once and the
HNSW answer is measured at several ``ef_search`` values against it (the latency-vs-recall curve).
"""

from __future__ import annotations

import io
import statistics
import time

import numpy as np

from bench import plots
from bench.context import Context
from bench.report import fmt, ratio

TARGET_P95_MS = 15.0  # issue 5, at 100k items / 20k snapshots
TARGET_RECALL = 0.95
REGIONS = 4
DIM = 1024


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def _bench_command():
    from recommender.management.commands.bench_recommender import Command

    class Sweep(Command):
        """bench_recommender's fill and plan check, measured over several ef_search values."""

        def measure(self, ctx: Context, items: int) -> dict:
            from django.conf import settings
            from django.db import connection, transaction

            from catalog.models import Style
            from recommender.indexes import vector_index_ensure
            from recommender.models import ModelVersion
            from recommender.selectors import (
                Filters,
                SearchOptions,
                item_list_for_snapshot,
                nearest_ids,
                snapshot_list_for_item,
            )

            plan = ctx.plan
            snapshots = items // 5
            self.opts = {
                "items": items,
                "snapshots": snapshots,
                "regions": REGIONS,
                "dim": DIM,
                "clusters": 1000,
                "queries": plan.queries,
                "k": settings.RECOMMENDER_TOP_K,
                "seed": 0,
                "maintenance_work_mem": "2GB",
            }
            self.rng = np.random.default_rng(0)
            k = self.opts["k"]
            out: dict = {"items": items, "snapshots": snapshots, "regions": REGIONS, "dim": DIM, "cases": []}
            # each direction has its own shipped ef_search (the sweep values are shared)
            default_efs = {"item": settings.RECOMMENDER_EF_SEARCH, "snapshot": settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS}
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT set_config('maintenance_work_mem', '2GB', true)")
                    version = ModelVersion.objects.create(
                        name=f"bench-scale-{int(time.time())}",
                        backbone="bench",
                        dim=DIM,
                        max_regions=REGIONS,
                        status="evaluating",
                    )
                    self.version = version
                    centers = self._unit(self.rng.normal(size=(1000, DIM)))
                    started = time.monotonic()
                    item_ids, _ = self._fill_items(version, centers)
                    snapshot_ids = self._fill_snapshots(version, centers)
                    style = Style.objects.create(name=f"Bench 10% {version.pk}", slug=f"bench-10pct-{version.pk}")
                    self._tag(style, item_ids, snapshot_ids)
                    out["fill_s"] = time.monotonic() - started
                    started = time.monotonic()
                    vector_index_ensure(model_version=version, concurrently=False)
                    out["index_s"] = time.monotonic() - started
                    with connection.cursor() as cursor:
                        for table in (
                            "catalog_itemembedding",
                            "catalog_snapshotembedding",
                            "catalog_item",
                            "catalog_snapshot",
                            "catalog_item_styles",
                            "catalog_snapshot_styles",
                        ):
                            cursor.execute(f"ANALYZE {table}")
                    ctx.log(f"scale {items:,}: filled in {out['fill_s']:.0f}s, HNSW built in {out['index_s']:.0f}s")
                    queries = {
                        "snapshot → items": (
                            "item",
                            "snapshot",
                            [int(x) for x in self.rng.choice(snapshot_ids, size=plan.queries, replace=False)],
                        ),
                        "item → snapshots": (
                            "snapshot",
                            "item",
                            [int(x) for x in self.rng.choice(item_ids, size=plan.queries, replace=False)],
                        ),
                    }
                    for direction, (kind, source_kind, qs) in queries.items():
                        default_ef = default_efs[kind]
                        ef_values = sorted({*plan.ef_values, default_ef})
                        for label, flt in (("none", Filters()), ("style ~10%", Filters(style_ids=(style.pk,)))):
                            ctx.log(
                                f"scale {items:,}: {direction}, filter {label}: exact baseline, then ef_search "
                                f"{', '.join(map(str, ef_values))}"
                            )
                            out["cases"].append(
                                self._sweep(
                                    direction,
                                    label,
                                    kind,
                                    source_kind,
                                    qs,
                                    flt,
                                    ef_values,
                                    default_ef,
                                    k,
                                    select=item_list_for_snapshot if kind == "item" else snapshot_list_for_item,
                                    nearest_ids=nearest_ids,
                                    options=SearchOptions.from_settings,
                                )
                            )
                    raise _RolledBack()
            except _RolledBack:
                pass
            return out

        def _sweep(
            self,
            direction,
            label,
            kind,
            source_kind,
            queries,
            filters,
            ef_values,
            default_ef,
            k,
            *,
            select,
            nearest_ids,
            options,
        ) -> dict:
            key = "snapshot_id" if kind == "item" else "item_id"
            truth, exact_ms = {}, []
            for q in queries:
                started = time.perf_counter()
                rows = nearest_ids(
                    kind=kind,
                    model_version=self.version,
                    k=k,
                    filters=filters,
                    query_from=(source_kind, q),
                    exact=True,
                    options=options(),
                )
                exact_ms.append((time.perf_counter() - started) * 1000)
                truth[q] = {i for i, _ in rows}
            sweep = []
            for ef in ef_values:
                opts = options(**{"ef_search" if kind == "item" else "ef_search_snapshots": ef})
                for q in queries[:3]:  # warm the caches at this setting
                    select(**{key: q}, k=k, filters=filters, model_version=self.version, options=opts)
                latencies, recalls, short = [], [], 0
                for q in queries:
                    started = time.perf_counter()
                    matches = select(**{key: q}, k=k, filters=filters, model_version=self.version, options=opts)
                    latencies.append((time.perf_counter() - started) * 1000)
                    got = {m.item.pk if kind == "item" else m.snapshot.pk for m in matches}
                    recalls.append(len(got & truth[q]) / max(1, len(truth[q])))
                    short += len(matches) < min(k, len(truth[q]))
                sweep.append(
                    {
                        "ef_search": ef,
                        "p50": statistics.median(latencies),
                        "p95": _pct(latencies, 95),
                        "recall": float(np.mean(recalls)),
                        "short_answers": short,
                    }
                )
            try:  # which access path the planner picks at the default settings (bench_recommender's check)
                with override_ef(default_ef):
                    plan = self._plan(kind, source_kind, queries[0], filters)
            except Exception as exc:  # noqa: BLE001 - a missing plan label must not lose the measurements
                plan = f"n/a ({type(exc).__name__})"
            return {
                "direction": direction,
                "filter": label,
                "default_ef": default_ef,
                "plan": plan,
                "exact_p50": statistics.median(exact_ms),
                "exact_p95": _pct(exact_ms, 95),
                "sweep": sweep,
            }

    return Sweep(stdout=io.StringIO(), stderr=io.StringIO())


class _RolledBack(Exception):
    """Raised to roll the scratch vectors back at the end of a scale."""


def override_ef(ef: int):
    from django.test import override_settings

    return override_settings(RECOMMENDER_EF_SEARCH=ef)


def run(ctx: Context) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
        pg, pgvector = cursor.fetchone()
    results = {"postgres": pg.split(" on ")[0], "pgvector": pgvector, "scales": []}
    for items in ctx.plan.scales:
        results["scales"].append(_bench_command().measure(ctx, items))
    ctx.report.results["selectors"] = results
    _write(ctx, results)
    return results


def _default_point(case: dict) -> dict:
    return next(p for p in case["sweep"] if p["ef_search"] == case["default_ef"])


def _write(ctx: Context, results: dict) -> None:
    from django.conf import settings

    sec = ctx.report.section("2b. Selector latency and recall at scale")
    scales = results["scales"]
    sec.text(
        f"`manage.py bench_recommender`'s data (reused: clustered, L2-normalised {DIM}-d vectors, 1,000 clusters; "
        f"snapshots = items / 5 with {REGIONS} region vectors each; a style on ~10% of rows; one transaction, rolled "
        f"back) and the recommender's selectors (`item_list_for_snapshot`, `snapshot_list_for_item`: SQL, settings, "
        f"hydration). Each of {ctx.plan.queries} queries per case is answered once by the exact scan "
        f"(`nearest_ids(exact=True)`, the baseline) and then by HNSW at every ef_search; recall@6 is against that "
        f"exact answer. {results['postgres']}, pgvector {results['pgvector']}; HNSW m={settings.RECOMMENDER_HNSW_M}, "
        f"ef_construction={settings.RECOMMENDER_HNSW_EF_CONSTRUCTION} (items) / "
        f"{settings.RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS} (snapshot regions), index precision "
        f"{getattr(settings, 'RECOMMENDER_INDEX_PRECISION', 'vector')}, iterative_scan="
        f"{settings.RECOMMENDER_ITERATIVE_SCAN}. Rows: the shipped default ef_search, "
        f"{settings.RECOMMENDER_EF_SEARCH} for snapshot → items, {settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS} for "
        f"item → snapshots."
    )
    rows = []
    for scale in scales:
        for case in scale["cases"]:
            p = _default_point(case)
            met = p["p95"] < TARGET_P95_MS and p["recall"] >= TARGET_RECALL
            rows.append(
                [
                    f"{scale['items']:,} items / {scale['snapshots']:,} snapshots",
                    case["direction"],
                    case["filter"],
                    fmt(p["p50"], 2),
                    fmt(p["p95"], 2),
                    fmt(p["recall"], 3),
                    fmt(case["exact_p50"], 1),
                    fmt(case["exact_p95"], 1),
                    ratio(case["exact_p50"], p["p50"], 1),
                    case["plan"],
                    "met" if met else "missed",
                ]
            )
    sec.table(
        [
            "data",
            "direction",
            "filter",
            "p50 ms",
            "p95 ms",
            "recall@6",
            "exact p50 ms",
            "exact p95 ms",
            "speed-up vs exact (p50)",
            "plan",
            f"p95 < {TARGET_P95_MS:g} ms & recall ≥ {TARGET_RECALL}",
        ],
        rows,
        align="lll" + "r" * 6 + "ll",
    )
    sec.text(
        "Issue 5's target is stated for 100,000 items / 20,000 snapshots; smaller scales are shown for the trend.",
        "Build cost: "
        + "; ".join(f"{s['items']:,} items: fill {s['fill_s']:.0f} s, HNSW build {s['index_s']:.0f} s" for s in scales)
        + ".",
    )
    curves = {}
    for scale in scales:
        for case in scale["cases"]:
            name = f"{scale['items'] // 1000}k, {case['direction']}, filter {case['filter']}"
            curves[name] = [(p["p95"], p["recall"], p["ef_search"]) for p in case["sweep"]]
    path = plots.latency_recall(
        ctx.out_dir / "selector_ef_sweep.png",
        curves,
        target_ms=TARGET_P95_MS,
        target_recall=TARGET_RECALL,
        title="Selector latency vs recall over ef_search",
    )
    sec.figure(path.name, "p95 latency vs recall@6 over ef_search (dashed: issue 5's targets)")
    sweep_rows = []
    for scale in scales:
        for case in scale["cases"]:
            for p in case["sweep"]:
                sweep_rows.append(
                    [
                        f"{scale['items'] // 1000}k",
                        case["direction"],
                        case["filter"],
                        p["ef_search"],
                        fmt(p["p50"], 2),
                        fmt(p["p95"], 2),
                        fmt(p["recall"], 3),
                        p["short_answers"],
                    ]
                )
    sec.text("<details><summary>Every ef_search point</summary>\n")
    sec.table(
        ["data", "direction", "filter", "ef_search", "p50 ms", "p95 ms", "recall@6", "short answers"],
        sweep_rows,
        align="lllrrrrr",
    )
    sec.text("</details>")
    largest = max(s["items"] for s in scales)
    if largest < 1_000_000:
        biggest = max(scales, key=lambda s: s["items"])
        build = biggest["fill_s"] + biggest["index_s"]
        ctx.report.not_produced(
            "selectors at 1,000,000 vectors",
            f"not attempted on this 2-core machine: filling and indexing {biggest['items']:,} items took "
            f"{build:.0f} s in this run, and HNSW build time grows faster than linearly, so 1M items (+200k "
            f"snapshots x {REGIONS} regions, ~{(1_000_000 + 800_000) * DIM * 4 / 1e9:.1f} GB of float32 vectors "
            f"before the index) would take well over {10 * build / 60:.0f} minutes, beyond the bench's hour"
            + ("" if ctx.plan.name == "full" else "; the quick mode stops at 10k by design, `make bench` adds 100k"),
        )
