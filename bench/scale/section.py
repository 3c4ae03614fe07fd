"""Writes section 2b from the measured scales: the default-setting table, the ef_search curves and sweep."""

from __future__ import annotations

from bench import plots
from bench.context import Context
from bench.report import Section, fmt, ratio
from bench.scale import DIM, REGIONS, TARGET_P95_MS, TARGET_RECALL, default_point


def write(ctx: Context, results: dict) -> None:
    scales = results["scales"]
    sec = ctx.report.section("2b. Selector latency and recall at scale")
    sec.text(_method(results, ctx.plan.queries))
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
        [_default_row(scale, case) for scale in scales for case in scale["cases"]],
        align="lll" + "r" * 6 + "ll",
    )
    sec.text(
        "Issue 5's target is stated for 100,000 items / 20,000 snapshots; smaller scales are shown for the trend.",
        "Build cost: "
        + "; ".join(f"{s['items']:,} items: fill {s['fill_s']:.0f} s, HNSW build {s['index_s']:.0f} s" for s in scales)
        + ".",
    )
    _curves(ctx, sec, scales)
    _every_point(sec, scales)
    _million_not_produced(ctx, scales)


def _method(results: dict, queries: int) -> str:
    """What was measured and how, with the settings the run shipped."""
    from django.conf import settings

    return (
        f"`manage.py bench_recommender`'s data (reused: clustered, L2-normalised {DIM}-d vectors, 1,000 clusters; "
        f"snapshots = items / 5 with {REGIONS} region vectors each; a style on ~10% of rows; one transaction, rolled "
        f"back) and the recommender's selectors (`item_list_for_snapshot`, `snapshot_list_for_item`: SQL, settings, "
        f"hydration). Each of {queries} queries per case is answered once by the exact scan "
        f"(`nearest_ids(exact=True)`, the baseline) and then by HNSW at every ef_search; recall@6 is against that "
        f"exact answer. {results['postgres']}, pgvector {results['pgvector']}; HNSW m={settings.RECOMMENDER_HNSW_M}, "
        f"ef_construction={settings.RECOMMENDER_HNSW_EF_CONSTRUCTION} (items) / "
        f"{settings.RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS} (snapshot regions), index precision "
        f"{getattr(settings, 'RECOMMENDER_INDEX_PRECISION', 'vector')}, iterative_scan="
        f"{settings.RECOMMENDER_ITERATIVE_SCAN}. Rows: the shipped default ef_search, "
        f"{settings.RECOMMENDER_EF_SEARCH} for snapshot → items, {settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS} for "
        f"item → snapshots."
    )


def _default_row(scale: dict, case: dict) -> list:
    p = default_point(case)
    met = p["p95"] < TARGET_P95_MS and p["recall"] >= TARGET_RECALL
    return [
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


def _curves(ctx: Context, sec: Section, scales: list[dict]) -> None:
    """The latency-vs-recall figure, one curve per scale and case."""
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


def _every_point(sec: Section, scales: list[dict]) -> None:
    """Every ef_search point of every case, folded away under the figure."""
    rows = []
    for scale in scales:
        for case in scale["cases"]:
            head = [f"{scale['items'] // 1000}k", case["direction"], case["filter"]]
            rows += [
                [*head, p["ef_search"], fmt(p["p50"], 2), fmt(p["p95"], 2), fmt(p["recall"], 3), p["short_answers"]]
                for p in case["sweep"]
            ]
    sec.text("<details><summary>Every ef_search point</summary>\n")
    sec.table(
        ["data", "direction", "filter", "ef_search", "p50 ms", "p95 ms", "recall@6", "short answers"],
        rows,
        align="lllrrrrr",
    )
    sec.text("</details>")


def _million_not_produced(ctx: Context, scales: list[dict]) -> None:
    """Why the 1M-vector scale is not attempted here, with this run's own build time as the evidence."""
    largest = max(s["items"] for s in scales)
    if largest >= 1_000_000:
        return
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
