"""The scratch catalog the serving measurements run on: imports plus the serving model version switched on."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import env
from bench.context import Context


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
    from workers.versioning import switch_to

    name, path = ctx.serving_model()
    version = _version_register(name, path)
    snapshot_ids = list(Snapshot.objects.order_by("pk").values_list("pk", flat=True))
    item_ids = list(Item.objects.order_by("pk").values_list("pk", flat=True))
    images = len(snapshot_ids) + len(item_ids)
    ctx.log(f"catalog: {len(snapshot_ids)} snapshots, {len(item_ids)} items; re-indexing for '{name}'")
    started = time.monotonic()
    switch_to(version, progress=lambda done, total, message: None)
    reindex_s = time.monotonic() - started
    ctx.log(f"re-index + activate: {reindex_s:.0f}s for {images} images")
    return Catalog(version.pk, name, snapshot_ids, item_ids, reindex_s, images)


def _version_register(name: str, path: Path):
    """A ready model version for the artifact at ``path``, through the recommender's own services."""
    from ml import artifact
    from recommender.versions import version_artifact_set, version_create, version_mark_ready

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
    return version
