"""Timing shop the look (garment scheme) against the same selectors forced to scan exactly, and its report.

Two cases per filter: ``look_picks`` (the whole answer: the look's garments and every garment's
search, one pick each, larger garments first) and ``item_list_for_garment`` (more like this
piece, k items). The exact answer is the same selector with ``exact=True``: every garment's
search (and the whole photo's) is an exact scan and the same greedy one-pick-per-garment rule runs
on exact neighbours. Recall of the picks: the share of the exact picks the served answer
has; of more like this piece: the share of the exact top k.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from catalog.models import SnapshotEmbedding, SnapshotGarment
from recommender.benchmark.measure import WARM_STABLE, CaseResult, Write, percentile
from recommender.models import ModelVersion
from recommender.selectors import Filters, similar_sql, vector_cursor
from recommender.selectors.filters import owners_matching
from recommender.selectors.similarity.pieces import garment_filters, garment_list, item_list_for_garment, look_picks

TARGET_P95_MS = 10
TARGET_RECALL = 0.98
LOOK_PICKS, MORE_LIKE = "look_picks", "more like this piece"


@dataclass(frozen=True)
class ShopResult:
    """One report row of the garment scheme."""

    case: str  # LOOK_PICKS or MORE_LIKE
    filter: str
    p50: float
    p95: float
    exact_p50: float
    exact_p95: float
    recall: float
    statements: float  # SQL statements per answer (mean over a few looks)
    sql_ms: float  # their summed time as the client saw it (round trips included), ms
    garments: float  # garments per look (mean of the measured looks)

    @property
    def met(self) -> bool:
        return self.p95 <= TARGET_P95_MS and self.recall >= TARGET_RECALL


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class ShopMeasurement:
    """Measures both cases on the garment version; ``looks`` measured, ``warm`` only warm the caches."""

    def __init__(
        self, *, version: ModelVersion, k: int, looks: list[int], warm: list[int], warmup: int, seed: int, write: Write
    ):
        self.version, self.k, self.looks, self.warm, self.warmup, self.write = version, k, looks, warm, warmup, write
        counts = dict(
            SnapshotGarment.objects.filter(model_version=version, snapshot_id__in=looks + warm)
            .values_list("snapshot_id")
            .annotate(n=Count("id"))
        )
        rng = np.random.default_rng(seed)
        # The piece each look asks "more like this" for, fixed for all filters.
        self.piece = {s: int(rng.integers(1, counts.get(s, 1) + 1)) for s in looks + warm}
        self.garment_counts = counts

    def _picks(self, look: int, filters: Filters, exact: bool) -> list[int]:
        _, picks = look_picks(snapshot_id=look, filters=filters, model_version=self.version, exact=exact)
        return [p.match.item.pk for p in picks]

    def _more(self, look: int, filters: Filters, exact: bool) -> list[int]:
        _, matches = item_list_for_garment(
            snapshot_id=look,
            garment_number=self.piece[look],
            k=self.k,
            filters=filters,
            model_version=self.version,
            exact=exact,
        )
        return [m.item.pk for m in matches]

    def filter_case(self, label: str, filters: Filters) -> list[ShopResult]:
        rows = []
        for case, run in ((LOOK_PICKS, self._picks), (MORE_LIKE, self._more)):
            exact, exact_ms = {}, []
            for look in self.looks:
                started = time.perf_counter()
                exact[look] = run(look, filters, True)
                exact_ms.append(_ms(started))
            self._warm_up(case, label, run, filters)
            latencies, recalls = [], []
            for look in self.looks:
                started = time.perf_counter()
                got = run(look, filters, False)
                latencies.append(_ms(started))
                truth = set(exact[look])
                recalls.append(len(truth & set(got)) / len(truth) if truth else 1.0)
            statements, sql_ms = self._statements(run, filters)
            rows.append(
                ShopResult(
                    case=case,
                    filter=label,
                    p50=statistics.median(latencies),
                    p95=percentile(latencies, 95),
                    exact_p50=statistics.median(exact_ms),
                    exact_p95=percentile(exact_ms, 95),
                    recall=float(np.mean(recalls)),
                    statements=statements,
                    sql_ms=sql_ms,
                    garments=float(np.mean([self.garment_counts.get(s, 0) for s in self.looks])),
                )
            )
            self.write(f"  measured {case}, {label}")
        return rows

    def _warm_up(self, case: str, label: str, run, filters: Filters) -> None:
        """Rounds of other looks until a round's p50 is within WARM_STABLE of the one before; printed."""
        size, rounds = max(1, self.warmup), []
        pool = self.warm or self.looks[:5]
        for start in range(0, len(pool), size):
            latencies = []
            for look in pool[start : start + size]:
                started = time.perf_counter()
                run(look, filters, False)
                latencies.append(_ms(started))
            rounds.append(statistics.median(latencies))
            if len(rounds) >= 2 and abs(rounds[-1] - rounds[-2]) <= WARM_STABLE * rounds[-2]:
                break
        self.write(
            f"  warm-up of {case}, {label}: {len(rounds)} round(s) of up to {size} other looks, "
            f"p50 per round {', '.join(f'{r:.2f}' for r in rounds)} ms"
        )

    def _statements(self, run, filters: Filters) -> tuple[float, float]:
        """SQL statements per answer and their summed time in ms (mean over five looks; not timed runs)."""
        counts, times = [], []
        for look in self.looks[:5]:
            # The log is a bounded deque that DEBUG may have filled: start it empty, so its length counts.
            connection.queries_log.clear()
            with CaptureQueriesContext(connection):
                run(look, filters, False)
                logged = list(connection.queries_log)
            counts.append(len(logged))
            times.append(sum(float(q["time"]) for q in logged) * 1000)
        return float(np.mean(counts)), float(np.mean(times))

    def plans(self, filters_by_label: dict[str, Filters]) -> list[str]:
        """Per garment group: items of its kind passing each filter, and the access path of one garment's
        search (an exact scan below RECOMMENDER_EXACT_BELOW_ROWS, else what EXPLAIN shows)."""
        seen: dict[str, np.ndarray] = {}
        for look in self.looks:
            for g in garment_list(snapshot_id=look, model_version=self.version):
                if g.group not in seen:
                    seen[g.group] = _region_vector(self.version, look, g.region)
        threshold = settings.RECOMMENDER_EXACT_BELOW_ROWS
        lines = [f"garment searches by group (exact scan below {threshold} rows of the kind passing the filters):"]
        for group in sorted(seen):
            parts = []
            for label, filters in filters_by_label.items():
                narrowed = garment_filters(group, filters)
                rows = _rows_passing(self.version, narrowed)
                path = "exact" if rows < threshold else _access_path(self.version, seen[group], narrowed)
                parts.append(f"{label}: {rows} items, {path}")
            lines.append(f"  {group:<12} " + "; ".join(parts))
        return lines


def _region_vector(version: ModelVersion, snapshot_id: int, region: int) -> np.ndarray:
    row = SnapshotEmbedding.objects.get(model_version=version, snapshot_id=snapshot_id, region=region)
    return np.asarray(row.vector, dtype=np.float32)


def _rows_passing(version: ModelVersion, filters: Filters) -> int:
    return owners_matching("item", filters).filter(embeddings__model_version=version).count()


def _access_path(version: ModelVersion, vector: np.ndarray, filters: Filters) -> str:
    """The access path PostgreSQL picks for one garment's k=1 search, under the served settings."""
    sql, params = similar_sql(kind="item", model_version=version, k=1, filters=filters, query_vectors=[vector])
    with transaction.atomic(), vector_cursor() as cursor:
        cursor.execute(
            "SELECT set_config('hnsw.iterative_scan', %s, true), set_config('enable_sort', 'off', true)",
            [settings.RECOMMENDER_ITERATIVE_SCAN],
        )
        cursor.execute("EXPLAIN " + sql, params)
        text = "\n".join(row[0] for row in cursor.fetchall())
    if "_hnsw" in text and "Index Scan" in text:
        return "hnsw"
    return "exact (planner)"


def shop_report_lines(rows: list[ShopResult], k: int) -> list[str]:
    """The garment scheme's table and its verdict against the issue's bars."""
    header = (
        f"{'garment scheme':<22} {'filter':<11} {'p50 ms':>7} {'p95 ms':>7} {'exact p50':>10} {'exact p95':>10} "
        f"{'recall':>7} {'stmts':>6} {'sql ms':>7}  target"
    )
    lines = ["", header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.case:<22} {r.filter:<11} {r.p50:>7.2f} {r.p95:>7.2f} {r.exact_p50:>10.1f} {r.exact_p95:>10.1f} "
            f"{r.recall:>7.3f} {r.statements:>6.1f} {r.sql_ms:>7.2f}  {'met' if r.met else 'MISSED'}"
        )
    if rows:
        verdict = "MET" if all(r.met for r in rows) else "NOT MET"
        lines.append(
            f"garment scheme ({rows[0].garments:.1f} garments per look; recall: {LOOK_PICKS} = share of the exact "
            f"picks found, {MORE_LIKE} = recall@{k}): target p95 <= {TARGET_P95_MS} ms and recall >= "
            f"{TARGET_RECALL} in all {len(rows)} cases: {verdict}"
        )
    return lines


def side_by_side(window: list[CaseResult], shop: list[ShopResult]) -> list[str]:
    """Both schemes of this run, one line per case: p95 and recall under each filter."""
    cells: dict[str, dict[str, str]] = {}
    for r in window:  # at the shipped ef_search, else the first one measured
        row = cells.setdefault(f"window: {r.direction}", {})
        if r.shipped or r.filter not in row:
            row[r.filter] = f"{r.p95:6.2f} ms, {r.recall:.3f}"
    for r in shop:
        cells.setdefault(f"garments: {r.case}", {})[r.filter] = f"{r.p95:6.2f} ms, {r.recall:.3f}"
    filters = list(dict.fromkeys(f for row in cells.values() for f in row))
    lines = ["", "side by side, p95 and recall (recall@k; picks: share of the exact picks):", ""]
    lines[2] = f"{'scheme: case':<34} " + " ".join(f"{f:<18}" for f in filters)
    for name, row in cells.items():
        lines.append(f"{name:<34} " + " ".join(f"{row.get(f, '-'):<18}" for f in filters))
    return lines
