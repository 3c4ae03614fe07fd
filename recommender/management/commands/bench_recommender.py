"""Benchmark the similarity selectors at catalog scale, beside an exact scan of the same data.

    python manage.py bench_recommender --items 100000 --snapshots 20000 [--scheme window|garments|both]

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
recall@k of the HNSW answer against the exact scan, for both directions. ``--scheme garments``
measures shop the look instead, on a garment-scheme version of its own (items in the canonical
categories, looks with 3-8 garments: ``recommender.benchmark.looks``): ``look_picks`` (the whole
answer) and ``item_list_for_garment`` beside the same selectors forced to scan exactly
(``recommender.benchmark.shop``); ``--scheme both`` runs both and prints them side by side. With
``--upload IMAGE`` it also times the upload query end to end (HTTP in through the test
client, worker, selector, k results out) against the ACTIVE model, if a worker is listening.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from catalog.models import Style
from ml.config import ModelConfig
from recommender.benchmark import looks, scratch
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
from recommender.benchmark.shop import ShopMeasurement, ShopResult, shop_report_lines, side_by_side
from recommender.indexes import vector_index_ensure
from recommender.models import ModelVersion
from recommender.selectors import Filters, query_region_rows

PROGRESS_EVERY_S = 10.0


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
        parser.add_argument(
            "--scheme",
            choices=("window", "garments", "both"),
            default="window",
            help="window: region windows, the selectors both ways (default); garments: shop the look "
            "(look_picks, item_list_for_garment) on a garment-scheme version; both: each on its own scratch "
            "version in this run, reported side by side",
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

    def _progress(self) -> scratch.Progress:
        """Prints a fill step's progress with the time left, at most every PROGRESS_EVERY_S seconds."""
        from workers.progress import progress_text  # pure; management commands may use workers

        started: dict[str, tuple[datetime, float]] = {}

        def report(label: str, done: int, total: int) -> None:
            now = time.monotonic()
            if label not in started or done == 0:
                started[label] = (datetime.now(UTC), now)
                return
            began, last = started[label]
            if now - last >= PROGRESS_EVERY_S and done < total:
                started[label] = (began, now)
                text = progress_text(done=done, total=total, started_at=began, now=datetime.now(UTC))
                self.stdout.write(f"    {label}: {text}")

        return report

    @contextmanager
    def _index_progress(self):
        """While the graphs are built: their progress (pg_stat_progress_create_index: pgvector reports the
        table blocks read) and time left, printed from a thread on a connection of its own."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        stop, report = threading.Event(), self._progress()

        def watch() -> None:
            # label -> (blocks read when first seen, last seen): the pace counts from the first sight, since
            # the scan skips other versions' rows (most of the table) much faster than it inserts ours.
            seen: dict[str, tuple[int, int]] = {}
            try:
                while not stop.wait(PROGRESS_EVERY_S / 2):
                    with connections["default"].cursor() as cursor:
                        # The index has no pg_class row until the build ends: name its table then.
                        cursor.execute(
                            "SELECT p.relid::regclass::text, p.blocks_done, p.blocks_total "
                            "FROM pg_stat_progress_create_index p WHERE p.pid = %s",
                            [pid],
                        )
                        for table, done, total in cursor.fetchall():
                            label, done, total = (
                                f"HNSW build on {table} (table blocks)",
                                int(done or 0),
                                int(total or 0),
                            )
                            first, last = seen.get(label, (done, done))
                            if done < last:  # the next graph of that table
                                first = done
                            seen[label] = (first, done)
                            report(label, done - first, total - first)
            finally:
                connections["default"].close()

        thread = threading.Thread(target=watch, name="bench-index-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _run(self) -> None:
        o = self.opts
        scratch.maintenance_work_mem_set(o["maintenance_work_mem"], in_transaction=o["in_transaction"])
        window = self._window() if o["scheme"] in ("window", "both") else []
        shop, plans = self._garments() if o["scheme"] in ("garments", "both") else ([], [])
        if window:
            for line in report_lines(window, o["k"]):
                self.stdout.write(line)
        if shop:
            for line in [*shop_report_lines(shop, o["k"]), *plans]:
                self.stdout.write(line)
        if window and shop:
            for line in side_by_side(window, shop):
                self.stdout.write(line)
        self.stdout.write(f"load average at the end (1, 5, 15 min): {load_average()}")

    def _window(self) -> list[CaseResult]:
        o = self.opts
        self.stdout.write(
            f"window scheme data: {o['items']} items, {o['snapshots']} snapshots x {o['regions']} regions, "
            f"dim {o['dim']}, {o['clusters']} clusters, k={o['k']}, {o['queries']} queries per case"
        )
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
        return rows

    def _garments(self) -> tuple[list[ShopResult], list[str]]:
        """The garment scheme: its own scratch version, catalog and indexes, then shop the look measured."""
        o = self.opts
        self.stdout.write(
            f"garment scheme data: {o['items']} items over {len(looks.GROUP_SHARES)} garment groups' canonical "
            f"categories, {o['snapshots']} looks x (1 whole photo + {looks.MIN_GARMENTS}-{looks.MAX_GARMENTS} "
            f"garment rows), dim {o['dim']}, {o['clusters']} product lines, k={o['k']}, "
            f"{o['queries']} looks per case"
        )
        version = looks.garment_version_create(dim=o["dim"])
        base = scratch.ScratchCatalog(
            version=version, rng=self.rng, dim=o["dim"], regions=version.max_regions, progress=self._progress()
        )
        catalog = looks.GarmentCatalog(base)
        lines = looks.lines_make(self.rng, clusters=o["clusters"], dim=o["dim"])
        self._filling_header()
        items, item_lines = self._timed(
            "items (in categories) + vectors", lambda: catalog.fill_items(o["items"], lines)
        )
        snapshots = self._timed(
            "looks + garments + region vectors", lambda: catalog.fill_snapshots(o["snapshots"], lines, item_lines)
        )
        style = scratch.scratch_style_create(version)
        self._timed("style on 10% of items and snapshots", lambda: base.tag(style, items, snapshots))
        self._index(version)
        n = o["queries"]
        warm = max(0, min(o["warmup"] * WARM_ROUNDS, len(snapshots) - n))
        sampled = [int(x) for x in self.rng.choice(snapshots, size=min(len(snapshots), n + warm), replace=False)]
        measurement = ShopMeasurement(
            version=version,
            k=o["k"],
            looks=sampled[:n],
            warm=sampled[n:],
            warmup=o["warmup"],
            seed=o["seed"],
            write=self.stdout.write,
        )
        filters = {"no filter": Filters(), "style ~10%": Filters(style_ids=(style.pk,))}
        rows = [row for label, f in filters.items() for row in measurement.filter_case(label, f)]
        return rows, measurement.plans(filters)

    def _filling_header(self) -> None:
        self.stdout.write(
            "filling (one transaction, rolled back at the end):"
            if self.opts["in_transaction"]
            else "filling (committed; deleted at the end):"
        )

    def _index(self, version: ModelVersion) -> None:
        if not self.opts["in_transaction"]:
            # Committed rows would soon get autovacuum's attention, in the middle of the measurements
            # (tagging rewrote 10% of the vector rows): vacuum now, before the graphs exist.
            self._timed("VACUUM ANALYZE", lambda: scratch.scratch_tables_run("VACUUM (ANALYZE)"))
        with self._index_progress():
            self._timed("HNSW indexes", lambda: vector_index_ensure(model_version=version, concurrently=False))
        self._timed("ANALYZE", lambda: scratch.scratch_tables_run("ANALYZE"))

    def _fill(self, version: ModelVersion) -> tuple[list[int], list[int], Style]:
        """The scratch catalog with its HNSW indexes: item ids, snapshot ids and the 10% style."""
        o = self.opts
        catalog = scratch.ScratchCatalog(
            version=version, rng=self.rng, dim=o["dim"], regions=o["regions"], progress=self._progress()
        )
        centers = scratch.unit(self.rng.normal(size=(o["clusters"], o["dim"])))
        self._filling_header()
        items, _ = self._timed("items + vectors", lambda: catalog.fill_items(o["items"], centers))
        snapshots = self._timed("snapshots + region vectors", lambda: catalog.fill_snapshots(o["snapshots"], centers))
        style = scratch.scratch_style_create(version)
        self._timed("style on 10% of items and snapshots", lambda: catalog.tag(style, items, snapshots))
        self._index(version)
        return items, snapshots, style
