"""One scale of section 2b: the scratch catalog that ``bench_recommender`` measures on
(``recommender.benchmark.scratch``), each query's exact answer, then the selectors at every
ef_search against it; one transaction, rolled back at the end.

Imported once Django is set up (``recommender.benchmark`` and the selectors need it).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.test import override_settings

from bench.context import Context
from bench.scale import DIM, REGIONS
from bench.stats import percentile
from catalog.models import Style
from recommender.benchmark.measure import plan_of
from recommender.benchmark.scratch import (
    ScratchCatalog,
    maintenance_work_mem_set,
    scratch_style_create,
    scratch_tables_run,
    scratch_version_create,
    unit,
)
from recommender.indexes import vector_index_ensure
from recommender.models import ModelVersion
from recommender.selectors import Filters, SearchOptions, item_list_for_snapshot, nearest_ids, snapshot_list_for_item

CLUSTERS = 1000  # garment "types" the vectors cluster around


class _RolledBack(Exception):
    """Raised to roll the scratch vectors back at the end of a scale."""


@dataclass(frozen=True)
class Case:
    """One measured case: a direction with or without the style filter, over the same queries."""

    direction: str  # "snapshot → items" or "item → snapshots"
    filter_label: str
    kind: str  # the kind searched for
    source_kind: str  # the kind of the query image
    queries: list[int]
    filters: Filters


def measure(ctx: Context, items: int) -> dict:
    """Fill and index one scale, then sweep every case over ef_search; nothing is left in the database."""
    plan = ctx.plan
    rng = np.random.default_rng(0)  # one stream, drawn in a fixed order: fill, tags, then the queries
    k = settings.RECOMMENDER_TOP_K
    out: dict = {"items": items, "snapshots": items // 5, "regions": REGIONS, "dim": DIM, "cases": []}
    # each direction has its own shipped ef_search (the sweep values are shared)
    default_efs = {"item": settings.RECOMMENDER_EF_SEARCH, "snapshot": settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS}
    try:
        with transaction.atomic():
            version, style, item_ids, snapshot_ids = _fill(ctx, rng, out)
            queries = {
                "snapshot → items": ("item", "snapshot", _pick(rng, snapshot_ids, plan.queries)),
                "item → snapshots": ("snapshot", "item", _pick(rng, item_ids, plan.queries)),
            }
            for direction, (kind, source_kind, qs) in queries.items():
                default_ef = default_efs[kind]
                ef_values = sorted({*plan.ef_values, default_ef})
                for label, flt in (("none", Filters()), ("style ~10%", Filters(style_ids=(style.pk,)))):
                    ctx.log(
                        f"scale {items:,}: {direction}, filter {label}: exact baseline, then ef_search "
                        f"{', '.join(map(str, ef_values))}"
                    )
                    case = Case(direction, label, kind, source_kind, qs, flt)
                    out["cases"].append(_sweep(version, k, case, ef_values, default_ef))
            raise _RolledBack()
    except _RolledBack:
        pass
    return out


def _fill(ctx: Context, rng: np.random.Generator, out: dict) -> tuple[ModelVersion, Style, list[int], list[int]]:
    """A scratch model version with clustered vectors, a style on ~10% of rows and its HNSW indexes."""
    maintenance_work_mem_set("2GB", in_transaction=True)
    version = scratch_version_create(dim=DIM, regions=REGIONS)
    catalog = ScratchCatalog(version=version, rng=rng, dim=DIM, regions=REGIONS)
    centers = unit(rng.normal(size=(CLUSTERS, DIM)))
    started = time.monotonic()
    item_ids, _ = catalog.fill_items(out["items"], centers)
    snapshot_ids = catalog.fill_snapshots(out["snapshots"], centers)
    style = scratch_style_create(version)
    catalog.tag(style, item_ids, snapshot_ids)
    out["fill_s"] = time.monotonic() - started
    started = time.monotonic()
    vector_index_ensure(model_version=version, concurrently=False)
    out["index_s"] = time.monotonic() - started
    scratch_tables_run("ANALYZE")  # so that the planner sees the real row counts
    ctx.log(f"scale {out['items']:,}: filled in {out['fill_s']:.0f}s, HNSW built in {out['index_s']:.0f}s")
    return version, style, item_ids, snapshot_ids


def _pick(rng: np.random.Generator, ids: list[int], n: int) -> list[int]:
    return [int(x) for x in rng.choice(ids, size=n, replace=False)]


def _sweep(version: ModelVersion, k: int, case: Case, ef_values: list[int], default_ef: int) -> dict:
    """The exact answers once (the baseline), then the selector at each ef_search against them."""
    truth, exact_ms = _exact(version, k, case)
    sweep = [_at_ef(version, k, case, ef, truth) for ef in ef_values]
    try:  # which access path the planner picks at the default settings (bench_recommender's check)
        with override_settings(RECOMMENDER_EF_SEARCH=default_ef):
            plan = plan_of(
                kind=case.kind,
                source_kind=case.source_kind,
                version=version,
                k=k,
                query_id=case.queries[0],
                filters=case.filters,
            )
    except Exception as exc:  # noqa: BLE001 - a missing plan label must not lose the measurements
        plan = f"n/a ({type(exc).__name__})"
    return {
        "direction": case.direction,
        "filter": case.filter_label,
        "default_ef": default_ef,
        "plan": plan,
        "exact_p50": statistics.median(exact_ms),
        "exact_p95": percentile(exact_ms, 95),
        "sweep": sweep,
    }


def _exact(version: ModelVersion, k: int, case: Case) -> tuple[dict[int, set[int]], list[float]]:
    """Each query's exact top k (ids) and the exact scan's latencies (ms)."""
    truth, exact_ms = {}, []
    for q in case.queries:
        started = time.perf_counter()
        rows = nearest_ids(
            kind=case.kind,
            model_version=version,
            k=k,
            filters=case.filters,
            query_from=(case.source_kind, q),
            exact=True,
            options=SearchOptions.from_settings(),
        )
        exact_ms.append((time.perf_counter() - started) * 1000)
        truth[q] = {i for i, _ in rows}
    return truth, exact_ms


def _at_ef(version: ModelVersion, k: int, case: Case, ef: int, truth: dict[int, set[int]]) -> dict:
    """The selector's latency and recall@k at one ef_search, after a few warm-up queries."""
    items = case.kind == "item"
    select, key = (item_list_for_snapshot, "snapshot_id") if items else (snapshot_list_for_item, "item_id")
    options = SearchOptions.from_settings(**{"ef_search" if items else "ef_search_snapshots": ef})

    def search(q: int) -> list:
        return select(**{key: q}, k=k, filters=case.filters, model_version=version, options=options)

    for q in case.queries[:3]:  # warm the caches at this setting
        search(q)
    latencies, recalls, short = [], [], 0
    for q in case.queries:
        started = time.perf_counter()
        matches = search(q)
        latencies.append((time.perf_counter() - started) * 1000)
        got = {m.item.pk if items else m.snapshot.pk for m in matches}
        recalls.append(len(got & truth[q]) / max(1, len(truth[q])))
        short += len(matches) < min(k, len(truth[q]))
    return {
        "ef_search": ef,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 95),
        "recall": float(np.mean(recalls)),
        "short_answers": short,
    }
