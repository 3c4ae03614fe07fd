"""Section 2b: selector latency and recall@6 at 10k / 100k items, over ef_search, with and without a filter.

Reuses the recommender's benchmark (``recommender.benchmark``, behind ``manage.py
bench_recommender``): its clustered vector fill, style tagging and plan check, all in one
transaction rolled back at the end, and the recommender's own selectors. What it adds: each
query's exact answer is computed once and the HNSW answer is measured at several ``ef_search``
values against it (the latency-vs-recall curve).
"""

from __future__ import annotations

from bench.context import Context

TARGET_P95_MS = 15.0  # issue 5, at 100k items / 20k snapshots
TARGET_RECALL = 0.95
REGIONS = 4
DIM = 1024


def run(ctx: Context) -> dict:
    from django.db import connection

    from bench.scale.section import write
    from bench.scale.sweep import measure

    with connection.cursor() as cursor:
        cursor.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
        pg, pgvector = cursor.fetchone()
    results = {"postgres": pg.split(" on ")[0], "pgvector": pgvector, "scales": []}
    for items in ctx.plan.scales:
        results["scales"].append(measure(ctx, items))
    ctx.report.results["selectors"] = results
    write(ctx, results)
    return results


def default_point(case: dict) -> dict:
    """A measured case's sweep point at the shipped default ef_search."""
    return next(p for p in case["sweep"] if p["ef_search"] == case["default_ef"])
