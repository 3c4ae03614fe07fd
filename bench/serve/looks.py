"""Section 1c: "shop the look" on the scratch catalog's CCP-Posts val posts, through the real selectors.

One pick per garment (``look_picks``) beside the whole photo's top 6, and "more like this piece", as
``manage.py measure_looks`` measures them (``recommender.measure_looks``): stored vectors and garments
of the serving model, the catalog's canonical categories, PostgreSQL and the HNSW indexes.
"""

from __future__ import annotations

from bench.context import Context
from bench.serve.catalog import Catalog


def measure(ctx: Context, catalog: Catalog) -> None:
    from catalog.models import Snapshot
    from recommender.measure_looks import measure_looks

    sec = ctx.report.section("1c. Shop the look: one pick per garment (CCP-Posts val, real selectors)")
    report = measure_looks(snapshots=Snapshot.objects.filter(pk__in=catalog.snapshot_ids), k=6)
    sec.text(
        f"Serving model '{catalog.model_name}' on the scratch catalog ({len(catalog.snapshot_ids)} snapshots, "
        f"{len(catalog.item_ids)} items: the posts' own item crops and the clothing-dataset products). "
        "Bar (issue 16): at least 90% of the picks in their garment's categories. The whole-photo top 6 is "
        "today's answer, measured in the same run.",
        "",
        *report.lines(),
    )
    ctx.report.results["shop_the_look"] = {
        "posts": report.posts,
        "skipped": report.skipped,
        "k": report.k,
        "seconds": report.seconds,
        **report.figures,
    }
