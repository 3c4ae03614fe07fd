"""Timing the similarity selectors against an exact scan of the same rows, and the report.

Each case (a direction and a filter) gets its exact answers once, then at each ef_search value
warm-up rounds of other queries and the measured queries: latency of the full public selector
(settings, one SQL, hydration) and recall@k of its answer against the exact one.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from catalog.embedding_targets import TARGETS, Kind, target
from recommender.models import ModelVersion
from recommender.selectors import (
    Filters,
    SearchOptions,
    item_list_for_snapshot,
    nearest_ids,
    similar_sql,
    snapshot_list_for_item,
    vector_cursor,
)

WARM_ROUNDS = 8  # at most this many warm-up rounds per measured setting
WARM_STABLE = 0.1  # warm-up ends when a round's p50 is within this share of the previous round's
TARGET_P95_MS = 15
TARGET_RECALL = 0.95
_SELECTORS = {"item": item_list_for_snapshot, "snapshot": snapshot_list_for_item}  # by the kind searched for

Write = Callable[[str], None]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, space-separated."""
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


@dataclass(frozen=True)
class Case:
    """One measured case: a search for ``kind`` from stored images of ``source_kind``, under ``filters``."""

    direction: str  # as reported: "snapshot -> items"
    label: str  # the filter, as reported
    kind: Kind
    source_kind: Kind
    queries: list[int]  # ids of the stored query images
    filters: Filters
    ef_values: list[int]


@dataclass(frozen=True)
class CaseResult:
    """One report row: a case at one ef_search value."""

    kind: Kind
    direction: str
    filter: str
    ef: int
    p50: float
    p95: float
    exact_p50: float
    exact_p95: float
    recall: float
    plan: str  # "hnsw" or "exact": the access path PostgreSQL chose

    @property
    def met(self) -> bool:
        return self.p95 < TARGET_P95_MS and self.recall >= TARGET_RECALL

    @property
    def shipped(self) -> bool:
        """Measured at the ef_search the settings ship for this direction."""
        return self.ef == getattr(SearchOptions.from_settings(), target(self.kind).ef_search_option)


class Measurement:
    """Runs cases on one model version; ``warm_pools`` holds, per kind searched for, the warm-up queries."""

    def __init__(
        self, *, version: ModelVersion, k: int, warmup: int, warm_pools: dict[str, list[int]], write: Write, warn: Write
    ):
        self.version, self.k, self.warmup, self.warm_pools = version, k, warmup, warm_pools
        self.write, self.warn = write, warn

    def case(self, case: Case) -> list[CaseResult]:
        """Exact answers once, then latency and recall@k of the selector at each ef_search."""
        truths, exact_latencies = self._exact(case)
        plan = plan_of(
            kind=case.kind,
            source_kind=case.source_kind,
            version=self.version,
            k=self.k,
            query_id=case.queries[0],
            filters=case.filters,
        )
        rows = []
        for ef in case.ef_values:
            options = SearchOptions.from_settings(**{target(case.kind).ef_search_option: ef})
            self._warm_up(case, ef, options)
            latencies, recalls = self._measured(case, options, truths)
            rows.append(
                CaseResult(
                    kind=case.kind,
                    direction=case.direction,
                    filter=case.label,
                    ef=ef,
                    p50=statistics.median(latencies),
                    p95=percentile(latencies, 95),
                    exact_p50=statistics.median(exact_latencies),
                    exact_p95=percentile(exact_latencies, 95),
                    recall=float(np.mean(recalls)),
                    plan=plan,
                )
            )
        self.write(f"  measured {case.direction}, {case.label}")
        return rows

    def _exact(self, case: Case) -> tuple[dict[int, set[int]], list[float]]:
        truths, latencies = {}, []
        for q in case.queries:
            started = time.perf_counter()
            exact = nearest_ids(
                kind=case.kind,
                model_version=self.version,
                k=self.k,
                filters=case.filters,
                query_from=(case.source_kind, q),
                exact=True,
            )
            latencies.append(_elapsed_ms(started))
            truths[q] = {i for i, _ in exact}
        return truths, latencies

    def _select(self, case: Case, query_id: int, options: SearchOptions) -> list:
        select = _SELECTORS[case.kind]
        return select(
            **{f"{case.source_kind}_id": query_id},
            k=self.k,
            filters=case.filters,
            model_version=self.version,
            options=options,
        )

    def _warm_up(self, case: Case, ef: int, options: SearchOptions) -> None:
        """Rounds of other queries (fresh ones each round) until a round's p50 settles; printed."""
        pool, size, rounds = self.warm_pools[case.kind] or case.queries[:5], max(1, self.warmup), []
        for start in range(0, len(pool), size):
            latencies = []
            for q in pool[start : start + size]:
                started = time.perf_counter()
                self._select(case, q, options)
                latencies.append(_elapsed_ms(started))
            rounds.append(statistics.median(latencies))
            if len(rounds) >= 2 and abs(rounds[-1] - rounds[-2]) <= WARM_STABLE * rounds[-2]:
                break
        self.write(
            f"  warm-up of {case.direction}, {case.label}, ef {ef}: {len(rounds)} round(s) of up to {size} other "
            f"queries, p50 per round {', '.join(f'{r:.2f}' for r in rounds)} ms"
        )

    def _measured(
        self, case: Case, options: SearchOptions, truths: dict[int, set[int]]
    ) -> tuple[list[float], list[float]]:
        latencies, recalls = [], []
        for q in case.queries:
            started = time.perf_counter()
            matches = self._select(case, q, options)
            latencies.append(_elapsed_ms(started))
            got = {getattr(m, case.kind).pk for m in matches}
            recalls.append(len(got & truths[q]) / max(1, len(truths[q])))
            if len(matches) != min(self.k, len(truths[q])):
                self.warn(f"  {case.direction} {case.label}: query {q} returned {len(matches)} of {len(truths[q])}")
        return latencies, recalls


def plan_of(*, kind: Kind, source_kind: Kind, version: ModelVersion, k: int, query_id: int, filters: Filters) -> str:
    """Which access path the planner picked for this case: the HNSW index or an exact scan."""
    sql, params = similar_sql(
        kind=kind,
        model_version=version,
        k=k,
        filters=filters,
        query_from=(source_kind, query_id),
        candidate_factor=2,
    )
    with transaction.atomic(), vector_cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.iterative_scan', %s, true)", [settings.RECOMMENDER_ITERATIVE_SCAN])
        cursor.execute("EXPLAIN " + sql, params)
        text = "\n".join(row[0] for row in cursor.fetchall())
    # Every HNSW index is named <target's index_prefix>_hnsw... (recommender.indexes).
    hnsw = any(f"Index Scan using {t.index_prefix}_hnsw" in text for t in TARGETS.values())
    return "hnsw" if hnsw else "exact"


def report_lines(rows: list[CaseResult], k: int) -> list[str]:
    """The table of all rows, then the verdict on the rows at the shipped ef_search values."""
    header = (
        f"{'direction':<18} {'filter':<11} {'ef':>4} {'p50 ms':>7} {'p95 ms':>7} {'exact p50':>10} "
        f"{'exact p95':>10} {'recall@k':>9} {'plan':>6}  target"
    )
    lines = ["", header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.direction:<18} {r.filter:<11} {r.ef:>4} {r.p50:>7.2f} {r.p95:>7.2f} "
            f"{r.exact_p50:>10.1f} {r.exact_p95:>10.1f} {r.recall:>9.3f} {r.plan:>6}  "
            f"{'met' if r.met else 'MISSED'}"
        )
    shipped = [r for r in rows if r.shipped]
    if shipped:
        verdict = "MET" if all(r.met for r in shipped) else "NOT MET"
        lines.append(
            f"shipped settings (ef_search {settings.RECOMMENDER_EF_SEARCH} / "
            f"{settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS}): target p95 < {TARGET_P95_MS} ms and "
            f"recall@{k} >= {TARGET_RECALL} in all {len(shipped)} cases: {verdict}"
        )
    return lines


def upload_timing(path: str, runs: int, write: Write) -> None:
    """Upload queries end to end (HTTP in through the test client, worker, selector, k results out)."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    with open(path, "rb") as handle:
        data = handle.read()
    client = Client(SERVER_NAME="localhost")
    write(f"upload query end to end ({path}, active model, {runs} runs per direction):")
    for direction in ("snapshot_to_items", "item_to_snapshots"):
        times, status = [], None
        for n in range(runs + 2):
            upload = SimpleUploadedFile(os.path.basename(path), data, content_type="image/jpeg")
            started = time.perf_counter()
            response = client.post("/api/query", {"direction": direction, "image": upload})
            elapsed = _elapsed_ms(started)
            status = response.status_code
            if status != 200:
                write(f"  {direction}: HTTP {status}: {response.json().get('message')}")
                break
            if n >= 2:  # the first two warm the worker's model and the worker check
                times.append(elapsed)
        if times:
            body = response.json()
            count = len(body["items"] or body["snapshots"])
            write(
                f"  {direction}: p50 {statistics.median(times):.0f} ms, p95 {percentile(times, 95):.0f} ms, "
                f"{count} results"
            )
