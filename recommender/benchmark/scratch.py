"""The benchmark's scratch catalog: a model version of backbone "bench" with its images and vectors.

Window scheme: vectors are clustered like real descriptors (items around garment "types"; a
look's regions are overlapping windows over its 3-5 garments), L2-normalised, and written by
binary COPY. The garment scheme's data is described in ``recommender.benchmark.looks``.
Every scratch row is recognisable (the version's backbone, a ``bench-<version>-`` content
hash, a ``bench-10pct-<version>`` style), so :func:`scratch_remove` also finds what a killed
run left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, models, transaction

from catalog.embedding_targets import ITEM, SNAPSHOT, TARGETS, EmbeddingTarget
from catalog.models import Item, PostItem, Snapshot, SnapshotGarment, Style
from ml.config import ModelConfig
from recommender.indexes import vector_index_drop
from recommender.models import ModelVersion

BACKBONE = "bench"
CREATE_BATCH = 5000  # catalog rows per bulk_create
COPY_CHUNK = 2000  # images whose vectors are drawn at once during the COPY
_LETTER = {"item": "i", "snapshot": "s"}  # in a scratch image's content hash and file name


# progress(label, done, total): called after each batch of a long fill step.
Progress = Callable[[str, int, int], None]


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit length along its last axis, as float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _no_progress(label: str, done: int, total: int) -> None:
    pass


def hash_prefix(version_pk: int, target: EmbeddingTarget) -> str:
    return f"bench-{version_pk}-{_LETTER[target.kind]}"


def _style_slug(version_pk: int) -> str:
    return f"bench-10pct-{version_pk}"


def scratch_version_create(*, dim: int, regions: int) -> ModelVersion:
    """The scratch version; with the shipped region count it also carries the shipped region scheme."""
    shipped = ModelConfig()
    config = {"regions": shipped.regions} if regions == shipped.max_regions else {}
    return ModelVersion.objects.create(
        name=f"bench-{int(time.time())}",
        backbone=BACKBONE,
        dim=dim,
        max_regions=regions,
        status="evaluating",
        config=config,
    )


def scratch_style_create(version: ModelVersion) -> Style:
    return Style.objects.create(name=f"Bench 10% {version.pk}", slug=_style_slug(version.pk))


def maintenance_work_mem_set(value: str, *, in_transaction: bool) -> None:
    """For this transaction, or (committed runs) for this session: the HNSW builds use it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, %s)", [value, in_transaction])


def scratch_tables() -> list[str]:
    """The tables the scratch data lands in: vectors, images, style links."""
    targets = list(TARGETS.values())
    return [t.table for t in targets] + [t.owner_table for t in targets] + [t.style_links for t in targets]


def scratch_tables_run(statement: str) -> None:
    """``statement`` (VACUUM, ANALYZE) on each scratch table."""
    with connection.cursor() as cursor:
        for table in scratch_tables():
            cursor.execute(f"{statement} {table}")


@dataclass
class ScratchCatalog:
    """Fills the scratch version's images and vectors, drawing everything from ``rng`` in a fixed order."""

    version: ModelVersion
    rng: np.random.Generator
    dim: int
    regions: int
    progress: Progress = _no_progress

    def create_items(self, count: int, category_ids=None) -> list[int]:
        """``count`` scratch item rows (``category_ids[n]`` the category of item n, when given), no vectors."""
        stamp, prefix = self.version.pk, hash_prefix(self.version.pk, ITEM)
        return self.create(
            ITEM,
            count,
            lambda n: Item(
                name=f"bench item {n}",
                image=f"bench/{stamp}/i{n}.jpg",
                width=300,
                height=400,
                content_hash=f"{prefix}{n}",
                embedding_status="ready",
                category_id=None if category_ids is None else int(category_ids[n]),
            ),
        )

    def create_snapshots(self, count: int) -> list[int]:
        """``count`` scratch published look rows, no vectors."""
        stamp, prefix = self.version.pk, hash_prefix(self.version.pk, SNAPSHOT)
        return self.create(
            SNAPSHOT,
            count,
            lambda n: Snapshot(
                title=f"bench look {n}",
                image=f"bench/{stamp}/s{n}.jpg",
                width=300,
                height=450,
                content_hash=f"{prefix}{n}",
                embedding_status="ready",
                is_published=True,
            ),
        )

    def fill_items(self, count: int, centers: np.ndarray) -> tuple[list[int], np.ndarray]:
        """``count`` items, each near one cluster centre; returns their ids and clusters."""
        clusters = self.rng.integers(0, len(centers), size=count)
        ids = self.create_items(count)
        self.copy_vectors(ITEM, ids, lambda idx: centers[clusters[idx]], noise=0.75)
        return ids, clusters

    def fill_snapshots(self, count: int, centers: np.ndarray) -> list[int]:
        """``count`` published looks with ``regions`` region vectors each."""
        ids = self.create_snapshots(count)
        self.copy_vectors(SNAPSHOT, ids, lambda idx: self._look_bases(centers, idx), noise=0.9)
        return ids

    def tag(self, style: Style, items: list[int], snapshots: list[int]) -> None:
        """Links a random 10% of the items and of the snapshots to ``style``."""
        for target, ids in ((ITEM, items), (SNAPSHOT, snapshots)):
            picked = self.rng.choice(ids, size=max(1, len(ids) // 10), replace=False)
            link = target.owner.styles.through
            owner_id = link._meta.get_field(target.kind).attname
            link.objects.bulk_create(
                [link(**{owner_id: int(i)}, style_id=style.pk) for i in picked], batch_size=CREATE_BATCH
            )

    def create(self, target: EmbeddingTarget, count: int, make: Callable[[int], models.Model]) -> list[int]:
        """``count`` catalog rows ``make(n)`` by bulk_create in batches; their ids in order."""
        ids: list[int] = []
        label = f"{target.kind} rows"
        self.progress(label, 0, count)
        for start in range(0, count, CREATE_BATCH):
            rows = [make(n) for n in range(start, min(start + CREATE_BATCH, count))]
            ids.extend(row.pk for row in target.owner.objects.bulk_create(rows))
            self.progress(label, len(ids), count)
        return ids

    def _look_bases(self, centers: np.ndarray, idx: np.ndarray) -> np.ndarray:
        # A look wears 3-5 garments. Region 0 (the whole photo) blends them all; each other
        # region is a window over 1-3 neighbouring garments with uneven weights, so regions
        # overlap and several regions of one look resemble the same item, as real windows do.
        out = np.empty((len(idx), self.regions, centers.shape[1]), dtype=np.float32)  # (looks, regions, dim)
        for row in range(len(idx)):
            garments = centers[self.rng.integers(0, len(centers), size=int(self.rng.integers(3, 6)))]
            out[row, 0] = garments.sum(axis=0)
            for r in range(1, self.regions):
                first = int(self.rng.integers(0, len(garments)))
                window = garments[first : first + int(self.rng.integers(1, 4))]
                out[row, r] = (window * (self.rng.random(len(window)) + 0.2)[:, None]).sum(axis=0)
        return unit(out)

    def copy_vectors(
        self, target: EmbeddingTarget, ids: list[int], bases: Callable[[np.ndarray], np.ndarray], *, noise: float
    ) -> None:
        """Each image's vector(s): its base (items: (n, dim); snapshots: (n, regions, dim)) plus noise."""

        def rows(start: int, stop: int):
            idx = np.arange(start, stop)
            base = bases(idx)
            vectors = unit(base + self.rng.normal(scale=noise / np.sqrt(self.dim), size=base.shape))
            for row, n in enumerate(idx):
                yield int(ids[n]), vectors[row] if target.regions else [vectors[row]]

        vector_copy(target, self.version, rows, len(ids), progress=self.progress, label=f"{target.kind} vectors")


def vector_copy(
    target: EmbeddingTarget,
    version: ModelVersion,
    rows: Callable[[int, int], Iterable[tuple[int, Sequence[np.ndarray]]]],
    total: int,
    *,
    progress: Progress = _no_progress,
    label: str = "vectors",
) -> None:
    """Binary COPY of (fk, model_version_id[, region], vector): ``rows(start, stop)`` yields, for images
    ``start..stop-1``, the owner id and its vectors (region 0, 1, ...; one for an item), in chunks."""
    from pgvector.psycopg import register_vector

    raw = connection.connection
    register_vector(raw)
    version_column = target.embedding._meta.get_field("model_version").column
    columns = f"{target.fk}, {version_column}{', region' if target.regions else ''}, vector"
    types = ["int8", "int8", *(["int2"] if target.regions else []), "vector"]
    statement = f"COPY {target.table} ({columns}) FROM STDIN WITH (FORMAT BINARY)"
    progress(label, 0, total)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        for start in range(0, total, COPY_CHUNK):
            stop = min(start + COPY_CHUNK, total)
            for owner_id, vectors in rows(start, stop):
                if target.regions:
                    for region, vector in enumerate(vectors):
                        copy.write_row((owner_id, version.pk, region, vector))
                else:
                    copy.write_row((owner_id, version.pk, vectors[0]))
            progress(label, stop, total)


def _owner_links(target: EmbeddingTarget) -> list[type[models.Model]]:
    """The link rows that point at a scratch image, deleted before the image itself."""
    links = [target.owner.styles.through, PostItem]
    if target is SNAPSHOT:
        links += [Snapshot.brands.through, Snapshot.tags.through]
    return links


def scratch_remove() -> None:
    """Delete every scratch version (backbone "bench") with its indexes, rows and catalog rows."""
    for version in ModelVersion.objects.filter(backbone=BACKBONE):
        vector_index_drop(model_version=version)
        pk = int(version.pk)
        with transaction.atomic(), connection.cursor() as cursor:
            garments = SnapshotGarment._meta
            cursor.execute(
                f"DELETE FROM {garments.db_table} WHERE {garments.get_field('model_version').column} = %s", [pk]
            )
            for t in TARGETS.values():
                version_column = t.embedding._meta.get_field("model_version").column
                cursor.execute(f"DELETE FROM {t.table} WHERE {version_column} = %s", [pk])
            for t in TARGETS.values():
                pattern = f"{hash_prefix(pk, t)}%"
                owned = f"SELECT {t.owner._meta.pk.column} FROM {t.owner_table} WHERE content_hash LIKE %s"
                for link in _owner_links(t):
                    column = link._meta.get_field(t.kind).column
                    cursor.execute(f"DELETE FROM {link._meta.db_table} WHERE {column} IN ({owned})", [pattern])
                cursor.execute(f"DELETE FROM {t.owner_table} WHERE content_hash LIKE %s", [pattern])
            Style.objects.filter(slug=_style_slug(pk)).delete()
            version.delete()
