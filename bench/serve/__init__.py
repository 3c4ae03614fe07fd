"""Section 2a/2c/2d: the serving stack on a scratch catalog — embedding throughput (library and one real
Celery worker), upload queries end to end over HTTP, and the pages under load.

The scratch catalog is built with the project's own commands and services: ``import_ccp`` /
``import_clothing`` (CCP val posts, clothing products), a model version registered through
``recommender.versions`` and switched on with ``workers.versioning.switch_to`` (re-index, index,
activate). The web server is gunicorn on 127.0.0.1; the worker is ``celery -A workers worker``.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import env, plots
from bench.context import Context
from bench.report import fmt, ratio

UPLOAD_TARGET_P95_MS = 300.0  # issue 5
QUERY_KIND = {"snapshot_to_items": "snapshot", "item_to_snapshots": "item"}  # the uploaded photo's kind


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


# --- catalog -------------------------------------------------------------------------------------------


@dataclass
class Catalog:
    version_id: int
    model_name: str
    snapshot_ids: list[int]
    item_ids: list[int]
    reindex_s: float
    images: int


def build_catalog(ctx: Context) -> Catalog:
    """Imports into the scratch catalog + the serving model version switched on (re-index included).

    Needs :func:`bench.env.setup_django` first (scratch services, migrations, Django set up).
    """
    plan = ctx.plan
    env.manage(
        ctx,
        "import_ccp",
        str(ctx.ccp),
        "--split",
        "val",
        "--limit",
        str(plan.catalog_posts),
        "--no-enqueue",
        "--no-progress",
    )
    env.manage(
        ctx,
        "import_clothing",
        str(ctx.clothing),
        "--limit",
        str(plan.catalog_products),
        "--no-enqueue",
        "--no-progress",
    )
    from catalog.models import Item, Snapshot
    from ml import artifact
    from recommender.versions import version_artifact_set, version_create, version_mark_ready
    from workers.versioning import switch_to

    name, path = ctx.serving_model()
    config = artifact.verify(path)
    meta = artifact.metadata(path)
    version = version_create(
        name=f"bench-{uuid.uuid4().hex[:8]}",
        backbone=config.backbone,
        config=config.to_dict(),
        is_pretrained_only=(name == "off-the-shelf"),
    )
    version_artifact_set(
        version=version,
        artifact_path=str(Path(path).resolve()),
        checksum=artifact.checksum(path),
        dim=int(meta["dim"]),
        max_regions=int(meta["max_regions"]),
        config=config.to_dict(),
    )
    version_mark_ready(version=version, decision="benchmark")
    snapshot_ids = list(Snapshot.objects.order_by("pk").values_list("pk", flat=True))
    item_ids = list(Item.objects.order_by("pk").values_list("pk", flat=True))
    images = len(snapshot_ids) + len(item_ids)
    ctx.log(f"catalog: {len(snapshot_ids)} snapshots, {len(item_ids)} items; re-indexing for '{name}'")
    started = time.monotonic()
    switch_to(version, progress=lambda done, total, message: None)
    reindex_s = time.monotonic() - started
    ctx.log(f"re-index + activate: {reindex_s:.0f}s for {images} images")
    return Catalog(version.pk, name, snapshot_ids, item_ids, reindex_s, images)


# --- embedding throughput -----------------------------------------------------------------------------


def _library_rate(embedder, kind: str, paths: list[Path], batch: int) -> float:
    from workers.ml_runtime import open_image

    started = time.monotonic()
    for start in range(0, len(paths), batch):
        images = [open_image(p) for p in paths[start : start + batch]]
        if kind == "snapshot":
            embedder.embed_snapshots(images)
        else:
            embedder.embed_items(images)
    return len(paths) / (time.monotonic() - started)


def _wait_for_worker(ctx: Context, worker: env.Process, name: str, timeout: float = 240) -> None:
    from workers.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"the Celery worker exited:\n{worker.tail()}")
        if app.control.ping(destination=[name], timeout=1):
            return
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f}s:\n{worker.tail()}")


def start_worker(ctx: Context) -> tuple[env.Process, str]:
    name = f"bench-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    worker = env.Process(
        "celery-worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "worker",
            "-Q",
            "embedding,queries",
            "-n",
            name,
            "-c",
            "1",
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ctx.root,
        log_dir=ctx.work_dir / "logs",
    )
    _wait_for_worker(ctx, worker, name)
    return worker, name


def throughput(ctx: Context, catalog: Catalog) -> dict:
    """In-process library rates, then one worker's (the worker of :func:`start_worker` must be running)."""
    from django.conf import settings

    from catalog.models import Item, Snapshot
    from recommender.models import ModelVersion
    from workers.ml_runtime import load_embedder
    from workers.tasks import embed_items, embed_snapshots

    plan = ctx.plan
    batch = settings.ML_EMBED_BATCH_SIZE
    version = ModelVersion.objects.get(pk=catalog.version_id)
    embedder = load_embedder(version)
    kinds = {
        "item": (Item, embed_items, plan.throughput_items),
        "snapshot": (Snapshot, embed_snapshots, plan.throughput_snapshots),
    }
    result: dict = {
        "batch": batch,
        "model": catalog.model_name,
        "reindex_s": catalog.reindex_s,
        "reindex_images": catalog.images,
    }
    for kind, (model, _, n) in kinds.items():
        rows = list(model.objects.order_by("pk")[:n])
        paths = [Path(r.image.path) for r in rows]
        _library_rate(embedder, kind, paths[:batch], batch)  # warm-up: graph tracing at the batch shape
        _library_rate(embedder, kind, paths[:1], 1)
        single = paths[: max(4, min(len(paths), 2 * batch))]
        result[kind] = {
            "n": len(paths),
            "library_batched": _library_rate(embedder, kind, paths, batch),
            "library_single": _library_rate(embedder, kind, single, 1),
            "ids": [r.pk for r in rows],
        }
        ctx.log(
            f"library {kind}s: {result[kind]['library_batched']:.1f}/s batched, "
            f"{result[kind]['library_single']:.1f}/s one at a time"
        )
    chunk = settings.CATALOG_EMBED_BATCH_SIZE
    embed_items.apply_async(args=[result["item"]["ids"][:2]], queue="embedding").get(timeout=300)  # load model
    embed_snapshots.apply_async(args=[result["snapshot"]["ids"][:1]], queue="embedding").get(timeout=300)
    for kind, (_, task, _) in kinds.items():
        ids = result[kind]["ids"]
        started = time.monotonic()
        pending = [task.apply_async(args=[ids[i : i + chunk]], queue="embedding") for i in range(0, len(ids), chunk)]
        done = sum(r.get(timeout=1800)["embedded"] for r in pending)
        seconds = time.monotonic() - started
        result[kind]["worker"] = done / seconds
        result[kind]["worker_embedded"] = done
        ctx.log(f"worker {kind}s: {done} in {seconds:.1f}s")
    for kind in kinds:
        result[kind].pop("ids")
    ctx.report.results["throughput"] = result
    sec = ctx.report.section("2a. Embedding throughput (CPU)")
    sec.text(
        f"Model: {catalog.model_name} ({version.dim}-d, {version.max_regions} vectors per snapshot). Images: the "
        f"scratch catalog's stored pictures (CCP val snapshots at 550×825, their item crops), decoded from disk. "
        f"*Library*: `Embedder.embed_items` / `embed_snapshots` in this process, batches of {batch} "
        f"(`ML_EMBED_BATCH_SIZE`), beside the same call one image at a time (baseline). *Worker*: one real "
        f"`celery worker -c 1` running `workers.embed_items` / `workers.embed_snapshots` tasks of {chunk} ids "
        f"(decode, embed, write the vectors to PostgreSQL), beside the library's batched rate."
    )
    rows = []
    for kind in kinds:
        r = result[kind]
        rows.append(
            [
                f"{kind}s",
                r["n"],
                fmt(r["library_single"]),
                fmt(r["library_batched"]),
                ratio(r["library_batched"], r["library_single"]),
                fmt(r.get("worker")),
                ratio(r.get("worker"), r["library_batched"]),
            ]
        )
    sec.table(
        [
            "images",
            "n",
            "one at a time /s",
            f"batched ({batch}) /s",
            "batched vs one",
            "one worker /s",
            "worker vs library",
        ],
        rows,
    )
    sec.text(
        f"Re-index of the scratch catalog ({catalog.images} images) for this model and switch "
        f"(`workers.versioning.switch_to`, in this process): **{catalog.reindex_s:.0f} s**."
    )
    path = plots.grouped_bars(
        ctx.out_dir / "throughput.png",
        groups=[f"{k}s" for k in kinds],
        series={
            "one at a time": [result[k]["library_single"] for k in kinds],
            f"library, batch {batch}": [result[k]["library_batched"] for k in kinds],
            "one Celery worker": [result[k].get("worker") for k in kinds],
        },
        ylabel="images / s",
        title="Embedding throughput on this CPU",
    )
    sec.figure(path.name, "Embedding throughput: one at a time vs batched vs one worker")
    return result


# --- HTTP: server, client, load ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ctx: Context, workers: int = 2, threads: int = 8) -> tuple[env.Process, int]:
    port = _free_port()
    server = env.Process(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ctx.root,
        log_dir=ctx.work_dir / "logs",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"gunicorn exited:\n{server.tail()}")
        try:
            status, _ = request(port, "GET", "/api/items?page_size=1")
            if status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 60s:\n{server.tail()}")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def multipart(fields: dict[str, str], file_field: str, file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    content_type = "image/png" if file_name.endswith(".png") else "image/jpeg"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{file_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def uploads(ctx: Context, catalog: Catalog, port: int) -> dict:
    """Upload queries end to end (HTTP in, worker, selector, 6 results out) beside the by-id recommendation."""
    from catalog.models import Item

    plan = ctx.plan
    photos = sorted((ctx.ccp / "photos").glob("*.jpg"))[780:800]  # val photos (any picture would do)
    products = [Path(p.image.path) for p in Item.objects.filter(source_key__startswith="clothing:")[:20]]
    if not products:
        products = [Path(p.image.path) for p in Item.objects.all()[:20]]
    cases = {
        "snapshot_to_items": (photos, "/api/snapshots/{}/items", catalog.snapshot_ids),
        "item_to_snapshots": (products, "/api/items/{}/snapshots", catalog.item_ids),
    }
    result = {}
    for direction, (files, by_id, ids) in cases.items():
        times, by_id_times, counts = [], [], []
        for n in range(plan.upload_runs + 2):
            path = files[n % len(files)]
            body, content_type = multipart({"direction": direction}, "image", path.name, path.read_bytes())
            started = time.perf_counter()
            status, payload = request(port, "POST", "/api/query", body, {"Content-Type": content_type})
            elapsed = (time.perf_counter() - started) * 1000
            if status != 200:
                raise RuntimeError(f"upload {direction} answered HTTP {status}: {payload[:300]!r}")
            data = json.loads(payload)
            if n >= 2:  # the first two warm the worker's model and the web side's worker check
                times.append(elapsed)
                counts.append(len(data.get("items") or data.get("snapshots") or []))
        rng = random.Random(0)
        for _ in range(plan.upload_runs):
            started = time.perf_counter()
            status, payload = request(port, "GET", by_id.format(rng.choice(ids)))
            by_id_times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {by_id} answered HTTP {status}: {payload[:300]!r}")
        result[direction] = {
            "p50": _pct(times, 50),
            "p95": _pct(times, 95),
            "results": min(counts),
            "by_id_p50": _pct(by_id_times, 50),
            "by_id_p95": _pct(by_id_times, 95),
            "runs": len(times),
        }
        ctx.log(f"upload {direction}: p50 {result[direction]['p50']:.0f} ms, p95 {result[direction]['p95']:.0f} ms")
    ctx.report.results["upload"] = result
    sec = ctx.report.section("2c. Upload query end to end")
    sec.text(
        f"`POST /api/query` (multipart photo) to gunicorn on 127.0.0.1: validate, `workers.embed_query` on the "
        f"*queries* queue (one real worker, model loaded), the selector, JSON out; {plan.upload_runs} runs per "
        f"direction after 2 warm-ups, sequential. Baseline: the by-id recommendation of a stored image "
        f"(`GET /api/snapshots/{{id}}/items`, `/api/items/{{id}}/snapshots`) on the same server: the cost of "
        f"everything but describing the photo. Model: {catalog.model_name}. Snapshots: CCP photos 550×825; "
        f"items: clothing-dataset product photos 400×533."
    )
    rows = []
    single = ctx.report.results.get("throughput", {})
    for direction, r in result.items():
        met = r["p95"] is not None and r["p95"] < UPLOAD_TARGET_P95_MS
        rate = single.get(QUERY_KIND[direction], {}).get("library_single")
        rows.append(
            [
                direction.replace("_", " "),
                fmt(r["p50"], 0),
                fmt(r["p95"], 0),
                r["results"],
                fmt(r["by_id_p50"], 1),
                fmt(r["by_id_p95"], 1),
                fmt(1000 / rate if rate else None, 0),
                ratio(r["p50"], r["by_id_p50"], 1),
                "met" if met else "missed",
            ]
        )
    sec.table(
        [
            "direction",
            "upload p50 ms",
            "upload p95 ms",
            "results",
            "by-id p50 ms",
            "by-id p95 ms",
            "embedding one image alone ms (2a)",
            "upload vs by-id (p50)",
            f"p95 < {UPLOAD_TARGET_P95_MS:g} ms",
        ],
        rows,
    )
    return result


@dataclass
class LoadResult:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self, names: list[str] | None = None) -> dict:
        names = names or list(self.latencies)
        values = [x for n in names for x in self.latencies.get(n, [])]
        errors = sum(self.errors.get(n, 0) for n in names)
        return {
            "requests": len(values),
            "errors": errors,
            "rps": len(values) / self.seconds,
            "p50": _pct(values, 50),
            "p95": _pct(values, 95),
        }


def load(port: int, targets: list[tuple[str, str]], *, clients: int, seconds: float) -> LoadResult:
    """``clients`` threads, each on its own keep-alive connection, cycling over (name, path) for ``seconds``."""
    result = LoadResult(seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = index
        local: dict[str, list[float]] = {}
        errors: dict[str, int] = {}
        while time.monotonic() < deadline:
            name, path = targets[n % len(targets)]
            n += 1
            started = time.perf_counter()
            try:
                status, _ = request(port, "GET", path, conn=conn)
                ok = status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                local.setdefault(name, []).append(elapsed)
            else:
                errors[name] = errors.get(name, 0) + 1
        conn.close()
        with lock:
            for k, v in local.items():
                result.latencies.setdefault(k, []).extend(v)
            for k, v in errors.items():
                result.errors[k] = result.errors.get(k, 0) + v

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    return result


def pages(ctx: Context, catalog: Catalog, port: int, *, server_workers: int, server_threads: int) -> dict:
    plan = ctx.plan
    rng = random.Random(0)
    targets = []
    for _ in range(25):
        targets += [
            ("snapshot tab /", "/"),
            ("item tab /items/", "/items/"),
            ("snapshot page", f"/snapshots/{rng.choice(catalog.snapshot_ids)}/"),
            ("item page", f"/items/{rng.choice(catalog.item_ids)}/"),
        ]
    for name, path in targets[:4]:  # every page answers before it is measured
        status, body = request(port, "GET", path)
        if status != 200:
            raise RuntimeError(f"{name} {path} answered HTTP {status}: {body[:300]!r}")
    baseline_target = [("baseline /api/items?page_size=1", "/api/items?page_size=1")]
    ctx.log(f"load: baseline, {plan.clients} clients x {plan.load_seconds:.0f}s")
    baseline = load(port, baseline_target, clients=plan.clients, seconds=plan.load_seconds)
    ctx.log(f"load: pages, {plan.clients} clients x {plan.load_seconds:.0f}s")
    mixed = load(port, targets, clients=plan.clients, seconds=plan.load_seconds)
    base = baseline.summary()
    result = {"baseline": base, "pages": mixed.summary(), "per_page": {n: mixed.summary([n]) for n in dict(targets)}}
    ctx.report.results["pages"] = result
    sec = ctx.report.section("2d. Pages under load")
    sec.text(
        f"{plan.clients} concurrent clients (Python threads on keep-alive connections, in the bench process on the "
        f"same 2 cores as the server) for {plan.load_seconds:.0f} s per run against gunicorn ({server_workers} "
        f"processes × {server_threads} threads, DEBUG settings, the scratch catalog: {len(catalog.snapshot_ids)} "
        f"snapshots, {len(catalog.item_ids)} items). *Pages*: the two tabs and random snapshot / item pages "
        f"(each with its 6 recommendations), in rotation. Baseline: the smallest database-backed answer on the same "
        f"server (`/api/items?page_size=1`). Errors: non-200 answers and failed connections."
    )
    rows = [
        [
            "baseline `/api/items?page_size=1`",
            fmt(base["rps"]),
            fmt(base["p50"]),
            fmt(base["p95"]),
            base["errors"],
            "x1.00",
        ]
    ]
    summary = result["pages"]
    rows.append(
        [
            "**all pages, mixed**",
            fmt(summary["rps"]),
            fmt(summary["p50"]),
            fmt(summary["p95"]),
            summary["errors"],
            ratio(summary["rps"], base["rps"]),
        ]
    )
    for name, r in result["per_page"].items():
        rows.append([f"· {name}", fmt(r["rps"]), fmt(r["p50"]), fmt(r["p95"]), r["errors"], ""])
    sec.table(["target", "requests/s", "p50 ms", "p95 ms", "errors", "req/s vs baseline"], rows)
    return result


def run(ctx: Context) -> Catalog:
    """Catalog, throughput, then the HTTP measurements (worker + gunicorn), stopped afterwards."""
    catalog = build_catalog(ctx)
    worker = server = None
    try:
        worker, _ = start_worker(ctx)  # one worker (embedding + queries queues) for throughput and uploads
        _guarded(ctx, "2a. Embedding throughput", lambda: throughput(ctx, catalog))
        server_workers, server_threads = 2, 8
        server, port = start_server(ctx, server_workers, server_threads)
        _guarded(ctx, "2c. Upload query end to end", lambda: uploads(ctx, catalog, port))
        _guarded(
            ctx,
            "2d. Pages under load",
            lambda: pages(ctx, catalog, port, server_workers=server_workers, server_threads=server_threads),
        )
    finally:
        for process in (server, worker):
            if process is not None:
                process.stop()
    return catalog


def _guarded(ctx: Context, name: str, fn) -> None:
    import traceback

    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the rest of the report
        ctx.log(f"{name} failed: {exc}\n{traceback.format_exc()}")
        ctx.report.failed(name, f"{type(exc).__name__}: {str(exc)[:600]}")
