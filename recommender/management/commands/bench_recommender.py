"""Benchmark the similarity selectors at catalog scale, beside an exact scan of the same data.

    python manage.py bench_recommender --items 100000 --snapshots 20000

The scratch data (a model version of backbone "bench", its catalog rows, vectors and HNSW
indexes) is committed, because the selectors share a search's probes with helper
connections (``RECOMMENDER_PROBE_CONNECTIONS``), which see committed rows only, and is
deleted at the end, also after an error or Ctrl-C; a run that was killed outright leaves it
behind, and the next run deletes it first. Run it on a development database: while it runs,
its rows are part of the catalog. ``--in-transaction`` keeps everything in one transaction
that is rolled back instead (never visible to other sessions; searches then stay on one
connection). The data is described in ``recommender.benchmark.scratch``.

Reported: selector p50/p95 latency (the full selector: settings, one SQL, hydration) with no
filter and with a style filter matching ~10% of rows, the exact scan's latency, and
recall@k of the HNSW answer against the exact scan, for both directions. With
``--upload IMAGE`` it also times the upload query end to end (HTTP in through the test
client, worker, selector, k results out) against the ACTIVE model, if a worker is listening.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from catalog.models import Style
from ml.config import ModelConfig
from recommender.benchmark import scratch
from recommender.benchmark.measure import (
    WARM_ROUNDS,
    WARM_STABLE,
    Case,
    CaseResult,
    Measurement,
    cpu_model,
    load_average,
    report_lines,
    upload_timing,
)
from recommender.indexes import vector_index_ensure
from recommender.models import ModelVersion
from recommender.selectors import Filters, query_region_rows


class _Rollback(Exception):
    pass


def _ef_list(value: str) -> list[int]:
    return [int(x) for x in str(value).split(",") if x.strip()]


class Command(BaseCommand):
    help = "Measure selector latency and recall@k on synthetic clustered vectors (scratch data removed afterwards)."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--snapshots", type=int, default=20_000)
        parser.add_argument(
            "--regions",
            type=int,
            default=ModelConfig().max_regions,
            help="descriptors per snapshot, region 0 = global (default: the shipped model's region scheme)",
        )
        parser.add_argument("--dim", type=int, default=1024, help="descriptor dimension (the ml default: 1024)")
        parser.add_argument("--clusters", type=int, default=1000)
        parser.add_argument("--queries", type=int, default=100, help="queries per measured case")
        parser.add_argument("--k", type=int, default=settings.RECOMMENDER_TOP_K)
        parser.add_argument(
            "--warmup",
            type=int,
            default=100,
            # argparse %-formats help strings: the percent sign is doubled.
            help="other queries per warm-up round before each measured setting (rounds go on, fresh queries each, "
            f"until a round's p50 is within {WARM_STABLE * 100:.0f}%% of the one before, at most {WARM_ROUNDS} "
            "rounds), so that a setting is measured on caches in the state a serving database keeps them in, not "
            "right after the index build; the rounds' figures are printed",
        )
        parser.add_argument(
            "--ef-search",
            default=str(settings.RECOMMENDER_EF_SEARCH),
            help="comma-separated hnsw.ef_search values for snapshot -> items (default: the setting)",
        )
        parser.add_argument(
            "--ef-search-snapshots",
            default=str(settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS),
            help="comma-separated hnsw.ef_search values for item -> snapshots (default: the setting)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--maintenance-work-mem", default="2GB")
        parser.add_argument("--upload", default="", help="an image file: also time upload queries end to end")
        parser.add_argument("--upload-runs", type=int, default=30)
        parser.add_argument("--upload-only", action="store_true", help="skip the vector benchmark")
        parser.add_argument(
            "--in-transaction",
            action="store_true",
            help="keep the scratch data in one rolled-back transaction (searches then use one connection)",
        )

    def handle(self, *args, **opts):
        if opts["items"] < opts["k"] or opts["snapshots"] < opts["k"]:
            raise CommandError("need at least k items and k snapshots")
        self.opts = opts
        self.rng = np.random.default_rng(opts["seed"])
        self._machine()
        if opts["upload_only"]:
            if not opts["upload"]:
                raise CommandError("--upload-only needs --upload IMAGE")
            upload_timing(opts["upload"], opts["upload_runs"], self.stdout.write)
            return
        if opts["in_transaction"]:
            try:
                with transaction.atomic():
                    self._run()
                    raise _Rollback()
            except _Rollback:
                self.stdout.write("scratch data rolled back: nothing was left in the database")
        else:
            scratch.scratch_remove()  # left by a run that was killed
            try:
                self._run()
            finally:
                self._timed("deleting the scratch data", scratch.scratch_remove)
        if opts["upload"]:
            upload_timing(opts["upload"], opts["upload_runs"], self.stdout.write)

    def _machine(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
            pg, pgvector = cursor.fetchone()
        self.stdout.write(f"machine: {os.cpu_count()} cores, {cpu_model()}, {platform.platform()}")
        self.stdout.write(f"database: {pg.split(' on ')[0]}, pgvector {pgvector}")
        self.stdout.write(
            f"settings: ef_search={settings.RECOMMENDER_EF_SEARCH} (snapshot -> items), "
            f"{settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS} (item -> snapshots), "
            f"x {settings.RECOMMENDER_EF_SEARCH_STYLE_FACTOR} on a style's own graph, "
            f"iterative_scan={settings.RECOMMENDER_ITERATIVE_SCAN}, "
            f"m={settings.RECOMMENDER_HNSW_M}, ef_construction={settings.RECOMMENDER_HNSW_EF_CONSTRUCTION} (items) / "
            f"{settings.RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS} (snapshot regions), "
            f"probe connections={1 if self.opts['in_transaction'] else settings.RECOMMENDER_PROBE_CONNECTIONS}"
        )

    def _timed(self, label: str, fn: Callable):
        started = time.perf_counter()
        result = fn()
        self.stdout.write(f"  {label}: {time.perf_counter() - started:.1f} s")
        return result

    def _run(self) -> None:
        o = self.opts
        self.stdout.write(
            f"data: {o['items']} items, {o['snapshots']} snapshots x {o['regions']} regions, dim {o['dim']}, "
            f"{o['clusters']} clusters, k={o['k']}, {o['queries']} queries per case"
        )
        scratch.maintenance_work_mem_set(o["maintenance_work_mem"], in_transaction=o["in_transaction"])
        version = scratch.scratch_version_create(dim=o["dim"], regions=o["regions"])
        asked = query_region_rows(version)
        self.stdout.write(
            f"query regions: {len(asked) if asked else o['regions']} of {o['regions']} per snapshot -> items query "
            f"(RECOMMENDER_SNAPSHOT_QUERY_REGIONS={settings.RECOMMENDER_SNAPSHOT_QUERY_REGIONS!r})"
        )
        items, snapshots, style = self._fill(version)
        # Measured queries, and others that only warm the caches before each setting, so that no setting
        # is measured on a cold index and none on its own queries' pages. The graphs are written around
        # shared buffers when built (and COPY and VACUUM use small rings), so right after the build the
        # first queries read graph and heap pages from the operating system one by one.
        n = o["queries"]
        warm = max(0, min(o["warmup"] * WARM_ROUNDS, len(snapshots) - n, len(items) - n))
        looks = [int(x) for x in self.rng.choice(snapshots, size=n + warm, replace=False)]
        picked = [int(x) for x in self.rng.choice(items, size=n + warm, replace=False)]
        measurement = Measurement(
            version=version,
            k=o["k"],
            warmup=o["warmup"],
            warm_pools={"item": looks[n:], "snapshot": picked[n:]},
            write=self.stdout.write,
            warn=self.stderr.write,
        )
        ef_items, ef_snapshots = _ef_list(o["ef_search"]), _ef_list(o["ef_search_snapshots"])
        rows: list[CaseResult] = []
        for label, filters in (("no filter", Filters()), ("style ~10%", Filters(style_ids=(style.pk,)))):
            for direction, kind, source_kind, queries, ef_values in (
                ("snapshot -> items", "item", "snapshot", looks[:n], ef_items),
                ("item -> snapshots", "snapshot", "item", picked[:n], ef_snapshots),
            ):
                case = Case(
                    direction=direction,
                    label=label,
                    kind=kind,
                    source_kind=source_kind,
                    queries=queries,
                    filters=filters,
                    ef_values=ef_values,
                )
                rows += measurement.case(case)
        for line in report_lines(rows, o["k"]):
            self.stdout.write(line)
        self.stdout.write(f"load average at the end (1, 5, 15 min): {load_average()}")

    def _fill(self, version: ModelVersion) -> tuple[list[int], list[int], Style]:
        """The scratch catalog with its HNSW indexes: item ids, snapshot ids and the 10% style."""
        o = self.opts
        catalog = scratch.ScratchCatalog(version=version, rng=self.rng, dim=o["dim"], regions=o["regions"])
        centers = scratch.unit(self.rng.normal(size=(o["clusters"], o["dim"])))
        self.stdout.write(
            "filling (one transaction, rolled back at the end):"
            if o["in_transaction"]
            else "filling (committed; deleted at the end):"
        )
        items, _ = self._timed("items + vectors", lambda: catalog.fill_items(o["items"], centers))
        snapshots = self._timed("snapshots + region vectors", lambda: catalog.fill_snapshots(o["snapshots"], centers))
        style = scratch.scratch_style_create(version)
        self._timed("style on 10% of items and snapshots", lambda: catalog.tag(style, items, snapshots))
        if not o["in_transaction"]:
            # Committed rows would soon get autovacuum's attention, in the middle of the measurements
            # (tagging rewrote 10% of the vector rows): vacuum now, before the graphs exist.
            self._timed("VACUUM ANALYZE", lambda: scratch.scratch_tables_run("VACUUM (ANALYZE)"))
        self._timed("HNSW indexes", lambda: vector_index_ensure(model_version=version, concurrently=False))
        self._timed("ANALYZE", lambda: scratch.scratch_tables_run("ANALYZE"))
        return items, snapshots, style
