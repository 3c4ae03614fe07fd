"""Section 2a/2c/2d: the serving stack on a scratch catalog — embedding throughput (library and one real
Celery worker), upload queries end to end over HTTP, and the pages under load.

The scratch catalog is built with the project's own commands and services: ``import_ccp`` /
``import_clothing`` (CCP val posts, clothing products), a model version registered through
``recommender.versions`` and switched on with ``workers.versioning.switch_to`` (re-index, index,
activate). The web server is gunicorn on 127.0.0.1; the worker is ``celery -A workers worker``.
"""

from __future__ import annotations

from bench.context import Context
from bench.serve import looks, pages, throughput, uploads
from bench.serve.catalog import Catalog, build_catalog
from bench.serve.web import start_server
from bench.serve.worker import start_worker

__all__ = ["Catalog", "run"]


def run(ctx: Context) -> Catalog:
    """Catalog, throughput, then the HTTP measurements (worker + gunicorn), stopped afterwards."""
    catalog = build_catalog(ctx)
    ctx.guard("1c. Shop the look", lambda: looks.measure(ctx, catalog))
    worker = server = None
    try:
        worker, _ = start_worker(ctx)  # one worker (embedding + queries queues) for throughput and uploads
        ctx.guard("2a. Embedding throughput", lambda: throughput.measure(ctx, catalog))
        server_workers, server_threads = 2, 8
        server, port = start_server(ctx, server_workers, server_threads)
        ctx.guard("2c. Upload query end to end", lambda: uploads.measure(ctx, catalog, port))
        ctx.guard(
            "2d. Pages under load",
            lambda: pages.measure(ctx, catalog, port, server_workers=server_workers, server_threads=server_threads),
        )
    finally:
        for process in (server, worker):
            if process is not None:
                process.stop()
    return catalog
