"""Benchmark the similarity selectors at catalog scale, beside an exact scan of the same data.

    python manage.py bench_recommender --items 100000 --snapshots 20000

The scratch data (a model version of backbone "bench", its catalog rows, vectors and HNSW
indexes) is committed, because the selectors share a search's probes with helper
connections (``RECOMMENDER_PROBE_CONNECTIONS``), which see committed rows only, and is
deleted at the end, also after an error or Ctrl-C; a run that was killed outright leaves it
behind, and the next run deletes it first. Run it on a development database: while it runs,
its rows are part of the catalog. ``--in-transaction`` keeps everything in one transaction
that is rolled back instead (never visible to other sessions; searches then stay on one
connection). Vectors are clustered like real descriptors (items around garment "types"; a
look's regions are overlapping windows over its 3-5 garments), L2-normalised.

Reported: selector p50/p95 latency (the full selector: settings, one SQL, hydration) with no
filter and with a style filter matching ~10% of rows, the exact scan's latency, and
recall@k of the HNSW answer against the exact scan, for both directions. With
``--upload IMAGE`` it also times the upload query end to end (HTTP in through the test
client, worker, selector, k results out) against the ACTIVE model, if a worker is listening.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from catalog.models import Item, Snapshot, Style
from ml.config import ModelConfig
from recommender.indexes import vector_index_ensure
from recommender.models import ModelVersion
from recommender.selectors import (
    Filters,
    SearchOptions,
    item_list_for_snapshot,
    nearest_ids,
    query_region_rows,
    similar_sql,
    snapshot_list_for_item,
    vector_cursor,
)


class _Rollback(Exception):
    pass


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


WARM_ROUNDS = 8  # at most this many warm-up rounds per measured setting
WARM_STABLE = 0.1  # warm-up ends when a round's p50 is within this share of the previous round's


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Command(BaseCommand):
    help = "Measure selector latency and recall@k on synthetic clustered vectors (rolled back afterwards)."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=100_000)
        parser.add_argument("--snapshots", type=int, default=20_000)
        parser.add_argument(
            "--regions", type=int, default=ModelConfig().max_regions,
            help="descriptors per snapshot, region 0 = global (default: the shipped model's region scheme)",
        )
        parser.add_argument("--dim", type=int, default=1024, help="descriptor dimension (the ml default: 1024)")
        parser.add_argument("--clusters", type=int, default=1000)
        parser.add_argument("--queries", type=int, default=100, help="queries per measured case")
        parser.add_argument("--k", type=int, default=settings.RECOMMENDER_TOP_K)
        parser.add_argument(
            "--warmup", type=int, default=100,
            help="other queries per warm-up round before each measured setting (rounds go on, fresh queries each, "
            f"until a round's p50 is within {WARM_STABLE:.0%} of the one before, at most {WARM_ROUNDS} rounds), so "
            "that a setting is measured on caches in the state a serving database keeps them in, not right "
            "after the index build; the rounds' figures are printed",
        )
        parser.add_argument(
            "--ef-search", default=str(settings.RECOMMENDER_EF_SEARCH),
            help="comma-separated hnsw.ef_search values for snapshot -> items (default: the setting)",
        )
        parser.add_argument(
            "--ef-search-snapshots", default=str(settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS),
            help="comma-separated hnsw.ef_search values for item -> snapshots (default: the setting)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--maintenance-work-mem", default="2GB")
        parser.add_argument("--upload", default="", help="an image file: also time upload queries end to end")
        parser.add_argument("--upload-runs", type=int, default=30)
        parser.add_argument("--upload-only", action="store_true", help="skip the vector benchmark")
        parser.add_argument(
            "--in-transaction", action="store_true",
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
            self._upload()
            return
        if opts["in_transaction"]:
            try:
                with transaction.atomic():
                    self._run()
                    raise _Rollback()
            except _Rollback:
                self.stdout.write("scratch data rolled back: nothing was left in the database")
        else:
            self._remove_scratch()  # left by a run that was killed
            try:
                self._run()
            finally:
                self._timed("deleting the scratch data", self._remove_scratch)
        if opts["upload"]:
            self._upload()

    # --- setup ----------------------------------------------------------------------------------

    def _machine(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'vector')")
            pg, pgvector = cursor.fetchone()
        self.stdout.write(f"machine: {os.cpu_count()} cores, {_cpu_model()}, {platform.platform()}")
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

    def _unit(self, x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    def _timed(self, label: str, fn: Callable):
        started = time.perf_counter()
        result = fn()
        self.stdout.write(f"  {label}: {time.perf_counter() - started:.1f} s")
        return result

    def _run(self) -> None:
        o = self.opts
        dim, regions = o["dim"], o["regions"]
        self.stdout.write(
            f"data: {o['items']} items, {o['snapshots']} snapshots x {regions} regions, dim {dim}, "
            f"{o['clusters']} clusters, k={o['k']}, {o['queries']} queries per case"
        )
        with connection.cursor() as cursor:
            # For this transaction, or (committed runs) for this session.
            cursor.execute(
                "SELECT set_config('maintenance_work_mem', %s, %s)", [o["maintenance_work_mem"], o["in_transaction"]]
            )
        shipped = ModelConfig()
        config = {"regions": shipped.regions} if regions == shipped.max_regions else {}
        version = ModelVersion.objects.create(
            name=f"bench-{int(time.time())}", backbone="bench", dim=dim, max_regions=regions, status="evaluating",
            config=config,
        )
        self.version = version
        asked = query_region_rows(version)
        self.stdout.write(
            f"query regions: {len(asked) if asked else regions} of {regions} per snapshot -> items query "
            f"(RECOMMENDER_SNAPSHOT_QUERY_REGIONS={settings.RECOMMENDER_SNAPSHOT_QUERY_REGIONS!r})"
        )
        centers = self._unit(self.rng.normal(size=(o["clusters"], dim)))
        self.stdout.write(
            "filling (one transaction, rolled back at the end):" if o["in_transaction"]
            else "filling (committed; deleted at the end):"
        )
        items, item_clusters = self._timed("items + vectors", lambda: self._fill_items(version, centers))
        snapshots = self._timed("snapshots + region vectors", lambda: self._fill_snapshots(version, centers))
        style = Style.objects.create(name=f"Bench 10% {version.pk}", slug=f"bench-10pct-{version.pk}")
        self._timed("style on 10% of items and snapshots", lambda: self._tag(style, items, snapshots))
        tables = (
            "catalog_itemembedding", "catalog_snapshotembedding", "catalog_item", "catalog_snapshot",
            "catalog_item_styles", "catalog_snapshot_styles",
        )
        if not o["in_transaction"]:
            # Committed rows would soon get autovacuum's attention, in the middle of the measurements
            # (tagging rewrote 10% of the vector rows): vacuum now, before the graphs exist.
            with connection.cursor() as cursor:
                self._timed("VACUUM ANALYZE", lambda: [cursor.execute(f"VACUUM (ANALYZE) {t}") for t in tables])
        self._timed("HNSW indexes", lambda: vector_index_ensure(model_version=version, concurrently=False))
        with connection.cursor() as cursor:
            self._timed("ANALYZE", lambda: [cursor.execute(f"ANALYZE {t}") for t in tables])
        filtered = Filters(style_ids=(style.pk,))
        # Measured queries, and others that only warm the caches before each setting, so that no setting
        # is measured on a cold index and none on its own queries' pages. The graphs are written around
        # shared buffers when built (and COPY and VACUUM use small rings), so right after the build the
        # first queries read graph and heap pages from the operating system one by one: the first hundred
        # item -> snapshots queries ran at 2-4x their steady latency. Warm-up rounds are printed.
        warm = min(o["warmup"] * WARM_ROUNDS, len(snapshots) - o["queries"], len(items) - o["queries"])
        looks = [int(x) for x in self.rng.choice(snapshots, size=o["queries"] + max(0, warm), replace=False)]
        picked = [int(x) for x in self.rng.choice(items, size=o["queries"] + max(0, warm), replace=False)]
        snapshot_queries, item_queries = looks[: o["queries"]], picked[: o["queries"]]
        self.warm = {"item": looks[o["queries"]:], "snapshot": picked[o["queries"]:]}
        ef_items = [int(x) for x in str(o["ef_search"]).split(",") if x.strip()]
        ef_snapshots = [int(x) for x in str(o["ef_search_snapshots"]).split(",") if x.strip()]
        rows = []
        for label, flt in (("no filter", Filters()), ("style ~10%", filtered)):
            rows += self._case("snapshot -> items", label, "item", "snapshot", snapshot_queries, flt, ef_items)
            rows += self._case("item -> snapshots", label, "snapshot", "item", item_queries, flt, ef_snapshots)
        self.stdout.write("")
        header = (
            f"{'direction':<18} {'filter':<11} {'ef':>4} {'p50 ms':>7} {'p95 ms':>7} {'exact p50':>10} "
            f"{'exact p95':>10} {'recall@k':>9} {'plan':>6}  target"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for r in rows:
            self.stdout.write(
                f"{r['direction']:<18} {r['filter']:<11} {r['ef']:>4} {r['p50']:>7.2f} {r['p95']:>7.2f} "
                f"{r['exact_p50']:>10.1f} {r['exact_p95']:>10.1f} {r['recall']:>9.3f} {r['plan']:>6}  "
                f"{'met' if self._met(r) else 'MISSED'}"
            )
        shipped = [
            r for r in rows
            if r["ef"] == (settings.RECOMMENDER_EF_SEARCH if r["direction"].startswith("snapshot")
                           else settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS)
        ]
        if shipped:
            verdict = "MET" if all(self._met(r) for r in shipped) else "NOT MET"
            self.stdout.write(
                f"shipped settings (ef_search {settings.RECOMMENDER_EF_SEARCH} / "
                f"{settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS}): target p95 < 15 ms and recall@{o['k']} >= 0.95 "
                f"in all {len(shipped)} cases: {verdict}"
            )
        with open("/proc/loadavg") as handle:
            self.stdout.write(f"load average at the end (1, 5, 15 min): {' '.join(handle.read().split()[:3])}")

    def _remove_scratch(self) -> None:
        """Delete every scratch version (backbone "bench") with its indexes, rows and catalog rows."""
        from recommender.indexes import vector_index_drop

        for version in ModelVersion.objects.filter(backbone="bench"):
            vector_index_drop(model_version=version)
            pk = int(version.pk)
            owned = {"item": f"bench-{pk}-i%", "snapshot": f"bench-{pk}-s%"}
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("DELETE FROM catalog_itemembedding WHERE model_version_id = %s", [pk])
                cursor.execute("DELETE FROM catalog_snapshotembedding WHERE model_version_id = %s", [pk])
                for kind, pattern in owned.items():
                    table = f"catalog_{kind}"
                    for child in (f"{table}_styles", "catalog_postitem", *(
                        ("catalog_snapshot_brands", "catalog_snapshot_tags") if kind == "snapshot" else ()
                    )):
                        cursor.execute(
                            f"DELETE FROM {child} WHERE {kind}_id IN "
                            f"(SELECT id FROM {table} WHERE content_hash LIKE %s)",
                            [pattern],
                        )
                    cursor.execute(f"DELETE FROM {table} WHERE content_hash LIKE %s", [pattern])
                Style.objects.filter(slug=f"bench-10pct-{pk}").delete()
                version.delete()

    @staticmethod
    def _met(row: dict) -> bool:
        return row["p95"] < 15 and row["recall"] >= 0.95

    def _fill_items(self, version, centers) -> tuple[list[int], np.ndarray]:
        o = self.opts
        stamp = version.pk
        batch = 5000
        ids: list[int] = []
        clusters = self.rng.integers(0, len(centers), size=o["items"])
        for start in range(0, o["items"], batch):
            rows = [
                Item(name=f"bench item {n}", image=f"bench/{stamp}/i{n}.jpg", width=300, height=400,
                     content_hash=f"bench-{stamp}-i{n}",
                     embedding_status="ready")
                for n in range(start, min(start + batch, o["items"]))
            ]
            ids.extend(i.pk for i in Item.objects.bulk_create(rows))
        self._copy_vectors(
            "catalog_itemembedding", "item_id", ids, lambda idx: centers[clusters[idx]], noise=0.75, regions=None
        )
        return ids, clusters

    def _fill_snapshots(self, version, centers) -> list[int]:
        o = self.opts
        stamp = version.pk
        ids: list[int] = []
        for start in range(0, o["snapshots"], 5000):
            rows = [
                Snapshot(title=f"bench look {n}", image=f"bench/{stamp}/s{n}.jpg", width=300, height=450,
                         content_hash=f"bench-{stamp}-s{n}",
                         embedding_status="ready", is_published=True)
                for n in range(start, min(start + 5000, o["snapshots"]))
            ]
            ids.extend(s.pk for s in Snapshot.objects.bulk_create(rows))
        regions = o["regions"]

        def bases(idx: np.ndarray) -> np.ndarray:
            # A look wears 3-5 garments. Region 0 (the whole photo) blends them all; each other
            # region is a window over 1-3 neighbouring garments with uneven weights, so regions
            # overlap and several regions of one look resemble the same item, as real windows do.
            out = np.empty((len(idx), regions, centers.shape[1]), dtype=np.float32)
            for row in range(len(idx)):
                garments = centers[self.rng.integers(0, len(centers), size=int(self.rng.integers(3, 6)))]
                out[row, 0] = garments.sum(axis=0)
                for r in range(1, regions):
                    first = int(self.rng.integers(0, len(garments)))
                    window = garments[first : first + int(self.rng.integers(1, 4))]
                    out[row, r] = (window * (self.rng.random(len(window)) + 0.2)[:, None]).sum(axis=0)
            return self._unit(out)

        self._copy_vectors("catalog_snapshotembedding", "snapshot_id", ids, bases, noise=0.9, regions=regions)
        return ids

    def _copy_vectors(self, table, fk, ids, bases, *, noise: float, regions: int | None) -> None:
        """Binary COPY in chunks: (fk, model_version_id[, region], vector)."""
        from pgvector.psycopg import register_vector

        dim = self.opts["dim"]
        raw = connection.connection
        register_vector(raw)
        ids_arr = np.asarray(ids)
        columns = f"{fk}, model_version_id{', region' if regions else ''}, vector"
        types = ["int8", "int8", *(["int2"] if regions else []), "vector"]
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for start in range(0, len(ids), 2000):
                idx = np.arange(start, min(start + 2000, len(ids)))
                base = bases(idx)
                shape = base.shape
                vectors = self._unit(base + self.rng.normal(scale=noise / np.sqrt(dim), size=shape))
                for row, n in enumerate(idx):
                    if regions:
                        for r in range(regions):
                            copy.write_row((int(ids_arr[n]), self.version.pk, r, vectors[row, r]))
                    else:
                        copy.write_row((int(ids_arr[n]), self.version.pk, vectors[row]))

    def _tag(self, style, items, snapshots) -> None:
        picked_items = self.rng.choice(items, size=max(1, len(items) // 10), replace=False)
        picked_looks = self.rng.choice(snapshots, size=max(1, len(snapshots) // 10), replace=False)
        Item.styles.through.objects.bulk_create(
            [Item.styles.through(item_id=int(i), style_id=style.pk) for i in picked_items], batch_size=5000
        )
        Snapshot.styles.through.objects.bulk_create(
            [Snapshot.styles.through(snapshot_id=int(s), style_id=style.pk) for s in picked_looks], batch_size=5000
        )

    # --- measurement ----------------------------------------------------------------------------

    def _case(self, direction, label, kind, source_kind, queries, filters, ef_values) -> list[dict]:
        """Exact answers once, then latency and recall@k of the selector at each ef_search."""
        k = self.opts["k"]
        version = self.version
        select = item_list_for_snapshot if kind == "item" else snapshot_list_for_item
        key = "snapshot_id" if kind == "item" else "item_id"
        truths, exact_latencies = {}, []
        for q in queries:
            started = time.perf_counter()
            exact = nearest_ids(
                kind=kind, model_version=version, k=k, filters=filters, query_from=(source_kind, q), exact=True,
            )
            exact_latencies.append((time.perf_counter() - started) * 1000)
            truths[q] = {i for i, _ in exact}
        plan = self._plan(kind, source_kind, queries[0], filters)
        rows = []
        for ef in ef_values:
            options = SearchOptions.from_settings(**{"ef_search" if kind == "item" else "ef_search_snapshots": ef})
            pool, size, rounds = self.warm[kind] or queries[:5], max(1, self.opts["warmup"]), []
            for start in range(0, len(pool), size):  # warm the caches (other queries, fresh ones each round)
                warm_latencies = []
                for q in pool[start : start + size]:
                    started = time.perf_counter()
                    select(**{key: q}, k=k, filters=filters, model_version=version, options=options)
                    warm_latencies.append((time.perf_counter() - started) * 1000)
                rounds.append(statistics.median(warm_latencies))
                if len(rounds) >= 2 and abs(rounds[-1] - rounds[-2]) <= WARM_STABLE * rounds[-2]:
                    break
            self.stdout.write(
                f"  warm-up of {direction}, {label}, ef {ef}: {len(rounds)} round(s) of up to {size} other queries, "
                f"p50 per round {', '.join(f'{r:.2f}' for r in rounds)} ms"
            )
            latencies, recalls = [], []
            for q in queries:
                started = time.perf_counter()
                matches = select(**{key: q}, k=k, filters=filters, model_version=version, options=options)
                latencies.append((time.perf_counter() - started) * 1000)
                got = {(m.item.pk if kind == "item" else m.snapshot.pk) for m in matches}
                recalls.append(len(got & truths[q]) / max(1, len(truths[q])))
                if len(matches) != min(k, len(truths[q])):
                    self.stderr.write(f"  {direction} {label}: query {q} returned {len(matches)} of {len(truths[q])}")
            rows.append({
                "direction": direction, "filter": label, "ef": ef, "p50": statistics.median(latencies),
                "p95": _percentile(latencies, 95), "exact_p50": statistics.median(exact_latencies),
                "exact_p95": _percentile(exact_latencies, 95), "recall": float(np.mean(recalls)), "plan": plan,
            })
        self.stdout.write(f"  measured {direction}, {label}")
        return rows

    def _plan(self, kind, source_kind, query_id, filters) -> str:
        """Which access path the planner picked for this case: the HNSW index or an exact scan."""
        sql, params = similar_sql(
            kind=kind, model_version=self.version, k=self.opts["k"], filters=filters,
            query_from=(source_kind, query_id), candidate_factor=2,
        )
        with transaction.atomic(), vector_cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.iterative_scan', %s, true)", [settings.RECOMMENDER_ITERATIVE_SCAN])
            cursor.execute("EXPLAIN " + sql, params)
            text = "\n".join(row[0] for row in cursor.fetchall())
        return "hnsw" if "Index Scan using catalog_" in text and "_hnsw" in text else "exact"

    def _upload(self) -> None:
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client

        path = self.opts["upload"]
        with open(path, "rb") as handle:
            data = handle.read()
        client = Client(SERVER_NAME="localhost")
        runs = self.opts["upload_runs"]
        self.stdout.write(f"upload query end to end ({path}, active model, {runs} runs per direction):")
        for direction in ("snapshot_to_items", "item_to_snapshots"):
            times, status = [], None
            for n in range(runs + 2):
                upload = SimpleUploadedFile(os.path.basename(path), data, content_type="image/jpeg")
                started = time.perf_counter()
                response = client.post("/api/query", {"direction": direction, "image": upload})
                elapsed = (time.perf_counter() - started) * 1000
                status = response.status_code
                if status != 200:
                    self.stdout.write(f"  {direction}: HTTP {status}: {response.json().get('message')}")
                    break
                if n >= 2:  # the first two warm the worker's model and the worker check
                    times.append(elapsed)
            if times:
                body = response.json()
                count = len(body["items"] or body["snapshots"])
                self.stdout.write(
                    f"  {direction}: p50 {statistics.median(times):.0f} ms, p95 {_percentile(times, 95):.0f} ms, "
                    f"{count} results"
                )
