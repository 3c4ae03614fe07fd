"""The two embedding targets, items and snapshots: one registry of what differs between them.

Selectors, index builds, workers and write services look a kind up here instead of re-deriving
"kind -> model, table, foreign key, style link table"; no embedding table name is written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from django.db import models

from catalog.models import Item, ItemEmbedding, Snapshot, SnapshotEmbedding

Kind = Literal["item", "snapshot"]


@dataclass(frozen=True)
class EmbeddingTarget:
    """One kind of catalog image and the table holding its vectors per model version."""

    kind: Kind
    owner: type[models.Model]  # the catalog image (Item, Snapshot)
    embedding: type[models.Model]  # its vectors (one row per version; per region for snapshots)
    regions: bool  # several rows per image and version (snapshot regions), region 0 the whole photo
    index_prefix: str  # names of the version's HNSW indexes on the table (recommender.indexes)
    ef_construction_setting: str  # HNSW build breadth of the table's graph
    ef_search_option: str  # the SearchOptions field for the walk of a search *for* this kind
    embed_method: str  # the ml Embedder method that describes a batch of these images

    @cached_property
    def table(self) -> str:
        return self.embedding._meta.db_table

    @cached_property
    def owner_table(self) -> str:
        return self.owner._meta.db_table

    @cached_property
    def fk(self) -> str:
        """The embedding row's column naming its image (``item_id``, ``snapshot_id``)."""
        return self.embedding._meta.get_field(self.kind).column

    @cached_property
    def style_links(self) -> str:
        """The owner's style link table (owner id column: :attr:`fk`)."""
        return self.owner.styles.through._meta.db_table


ITEM = EmbeddingTarget(
    kind="item",
    owner=Item,
    embedding=ItemEmbedding,
    regions=False,
    index_prefix="catalog_itememb",
    ef_construction_setting="RECOMMENDER_HNSW_EF_CONSTRUCTION",
    ef_search_option="ef_search",
    embed_method="embed_items",
)
SNAPSHOT = EmbeddingTarget(
    kind="snapshot",
    owner=Snapshot,
    embedding=SnapshotEmbedding,
    regions=True,
    index_prefix="catalog_snapemb",
    ef_construction_setting="RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS",
    ef_search_option="ef_search_snapshots",
    embed_method="embed_looks",  # ml.model.Looks: the vectors and the garments they describe
)
TARGETS: dict[str, EmbeddingTarget] = {"item": ITEM, "snapshot": SNAPSHOT}  # items first: index order
KINDS: tuple[Kind, ...] = ("snapshot", "item")  # the order workers embed and re-index in


def target(kind: str) -> EmbeddingTarget:
    """The registry entry of ``kind``; ``ValueError`` for anything but "item" or "snapshot"."""
    try:
        return TARGETS[kind]
    except KeyError:
        raise ValueError(f"unknown image kind {kind!r}") from None
