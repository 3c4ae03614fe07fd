"""Fixtures for the recommender: catalog rows in bulk (no image processing) with known vectors."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

import numpy as np
import pytest

_serial = itertools.count(1)


def unit(vector: Sequence[float]) -> list[float]:
    v = np.asarray(vector, dtype=np.float64)
    return (v / np.linalg.norm(v)).tolist()


def analyze_catalog() -> None:
    """Statistics of the catalog tables as a test filled them (ANALYZE counts this transaction's own rows).

    Without it a test's plans use whatever an earlier test left: after the bench tests analyse their
    scratch tables and delete the rows, the planner takes these tables for empty (reltuples 0) and a
    filter count over 1,500 items ran as nested loops for minutes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_item, catalog_item_styles, catalog_itemembedding")


class Catalog:
    """Bulk builders: rows carry placeholder image names (selectors never open the files)."""

    def version(self, *, dim: int = 8, max_regions: int = 1, status: str = "active", name: str | None = None):
        from recommender.indexes import vector_index_ensure
        from recommender.models import ModelVersion

        version = ModelVersion.objects.create(
            name=name or f"reco-test-{next(_serial)}", backbone="test", dim=dim, max_regions=max_regions, status=status
        )
        vector_index_ensure(model_version=version)
        return version

    def items(self, n: int, *, category=None, brand=None, styles: Sequence = (), name: str = "Item"):
        from catalog.models import Item

        rows = []
        for _ in range(n):
            serial = next(_serial)
            rows.append(
                Item(
                    name=f"{name} {serial}",
                    image=f"images/test/{serial}.jpg",
                    width=300,
                    height=400,
                    content_hash=uuid.uuid4().hex,
                    category=category,
                    brand=brand,
                    embedding_status="ready",
                )
            )
        items = Item.objects.bulk_create(rows)
        if styles:
            through = Item.styles.through
            through.objects.bulk_create([through(item_id=i.pk, style_id=s.pk) for i in items for s in styles])
        return items

    def snapshots(self, n: int, *, styles: Sequence = (), brands: Sequence = (), is_published: bool = True):
        from catalog.models import Snapshot

        rows = []
        for _ in range(n):
            serial = next(_serial)
            rows.append(
                Snapshot(
                    title=f"Look {serial}",
                    image=f"images/test/s{serial}.jpg",
                    width=300,
                    height=450,
                    content_hash=uuid.uuid4().hex,
                    is_published=is_published,
                    embedding_status="ready",
                )
            )
        snapshots = Snapshot.objects.bulk_create(rows)
        for field, values in (("styles", styles), ("brands", brands)):
            if values:
                through = getattr(Snapshot, field).through
                column = f"{through._meta.get_field(field[:-1]).attname}"
                through.objects.bulk_create(
                    [through(snapshot_id=s.pk, **{column: v.pk}) for s in snapshots for v in values]
                )
        return snapshots

    def item_vectors(self, version, pairs):
        """``pairs``: (item, vector) — vectors are normalised."""
        from catalog.models import ItemEmbedding

        ItemEmbedding.objects.bulk_create(
            [ItemEmbedding(item=item, model_version=version, vector=unit(v)) for item, v in pairs]
        )
        if len(pairs) >= 100:
            analyze_catalog()

    def snapshot_vectors(self, version, snapshot, regions: Sequence[Sequence[float]]):
        from catalog.models import SnapshotEmbedding

        SnapshotEmbedding.objects.bulk_create(
            [
                SnapshotEmbedding(snapshot=snapshot, model_version=version, region=r, vector=unit(v))
                for r, v in enumerate(regions)
            ]
        )


@pytest.fixture
def catalog_rows(db) -> Catalog:
    return Catalog()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def reco_catalog(catalog_rows, rng):
    """An active 8-d version with 2 regions: 24 items (8 "boho", 8 under tops > shirts, 8 acme) and 10 looks."""
    from tests import factories as f

    version = catalog_rows.version(dim=8, max_regions=2)
    boho, street = f.make_style("Boho"), f.make_style("Street")
    tops = f.make_category("Tops")
    shirts = f.make_category("Shirts", parent=tops)
    acme = f.make_brand("Acme")
    items = (
        catalog_rows.items(8, styles=[boho])
        + catalog_rows.items(8, category=shirts, styles=[street])
        + catalog_rows.items(8, brand=acme, styles=[street])
    )
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    looks = catalog_rows.snapshots(6, styles=[boho]) + catalog_rows.snapshots(4, styles=[street], brands=[acme])
    for look in looks:
        catalog_rows.snapshot_vectors(version, look, rng.normal(size=(2, 8)).tolist())
    return {
        "version": version,
        "items": items,
        "looks": looks,
        "boho": boho,
        "street": street,
        "tops": tops,
        "shirts": shirts,
        "acme": acme,
    }


@pytest.fixture
def query_worker(worker_factory, settings):
    """A real worker on the "queries" queue answering the stand-in embed_query task with known vectors.

    The workers engineer's ``workers.embed_query`` needs a trained artifact; this stand-in keeps the
    web side's round trip (validation, broker, worker process, result backend, selector) real.
    """
    from tests.recommender.fake_embed_worker import FAKE_TASK_NAME

    settings.RECOMMENDER_QUERY_TASK = FAKE_TASK_NAME
    return worker_factory(
        queues="queries", name="reco-queries", extra_env={"DJANGO_SETTINGS_MODULE": "tests.recommender.worker_settings"}
    )


@pytest.fixture(autouse=True)
def _forget_seen_query_workers(monkeypatch):
    """Each test starts without the web side's cached "a query worker was seen" answer."""
    from recommender import uploads

    monkeypatch.setattr(uploads, "_worker_seen_at", 0.0)


# --- a look with garments (shop the look) ---------------------------------------------------------

# region -> (group, box): a top, trousers below it, shoes at the bottom, stored out of order
LOOK_GARMENTS = {
    3: ("shoes", (0.3, 0.85, 0.7, 0.98)),
    1: ("tops", (0.2, 0.1, 0.8, 0.45)),
    2: ("trousers", (0.25, 0.45, 0.75, 0.85)),
}


def garment_outline(box):
    left, top, right, bottom = box
    return [[[left, top], [right, top], [right, bottom], [left, bottom]]]


def store_garments(version, snapshot, garments=LOOK_GARMENTS):
    """``garments``: region -> (group, box) stored as the version's garments of ``snapshot``."""
    from catalog.models import SnapshotGarment

    SnapshotGarment.objects.bulk_create(
        [
            SnapshotGarment(
                snapshot=snapshot,
                model_version=version,
                region=region,
                group=group,
                box=list(box),
                outline=garment_outline(box),
                confidence=0.9,
                area=(box[2] - box[0]) * (box[3] - box[1]),
            )
            for region, (group, box) in garments.items()
        ]
    )


def garment_records(garments=LOOK_GARMENTS):
    """The same garments as the query worker sends them for an upload."""
    return [
        {"group": g, "box": list(b), "outline": garment_outline(b), "confidence": 0.9, "area": 0.1, "region": r}
        for r, (g, b) in garments.items()
    ]


def three_garment_look(catalog_rows, rng):
    """An active 8-d, 4-row version; 12 items each of tops (t-shirt), trousers (pants) and shoes (sneakers),
    a third of them by one brand; a look with three garments (:data:`LOOK_GARMENTS`)."""
    from catalog.services.taxonomy import category_get_or_create
    from tests import factories as f

    version = catalog_rows.version(dim=8, max_regions=4)
    acme = f.make_brand("Acme")
    kinds = {"tops": "t-shirt", "trousers": "pants", "shoes": "sneakers"}
    items, vectors = {}, {}
    for group, label in kinds.items():
        category = category_get_or_create(path=label)
        items[group] = catalog_rows.items(8, category=category) + catalog_rows.items(4, category=category, brand=acme)
        for item in items[group]:
            vectors[item.pk] = unit(rng.normal(size=8))
    catalog_rows.item_vectors(version, [(item, vectors[item.pk]) for group in items for item in items[group]])
    snapshot = catalog_rows.snapshots(1)[0]
    regions = [unit(v) for v in rng.normal(size=(4, 8))]
    catalog_rows.snapshot_vectors(version, snapshot, regions)
    store_garments(version, snapshot)
    return {
        "version": version,
        "items": items,
        "vectors": vectors,
        "snapshot": snapshot,
        "regions": regions,
        "acme": acme,
    }
