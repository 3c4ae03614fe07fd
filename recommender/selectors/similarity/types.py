"""What a search is asked (:class:`Query`, :class:`SearchOptions`) and what it answers (matches, errors)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from django.conf import settings

from catalog.models import Item, Snapshot
from recommender.models import ModelVersion
from recommender.selectors.filters import Filters

Kind = Literal["item", "snapshot"]
ITERATIVE_SCAN_MODES = ("off", "relaxed_order", "strict_order")


class RecommendationUnavailable(Exception):
    """Recommendations cannot be computed right now; ``message`` is safe to show to shoppers."""

    message = "Recommendations are not available right now."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class NoActiveModel(RecommendationUnavailable):
    message = "No recommendation model is active yet. Please come back a little later."


class NotEmbedded(RecommendationUnavailable):
    message = "This image has not been analysed yet, so there are no recommendations for it. Please check back soon."


@dataclass(frozen=True)
class ItemMatch:
    item: Item
    distance: float

    @property
    def score(self) -> float:
        """Cosine similarity (1 - cosine distance)."""
        return 1.0 - self.distance


@dataclass(frozen=True)
class SnapshotMatch:
    snapshot: Snapshot
    distance: float

    @property
    def score(self) -> float:
        """Cosine similarity of the snapshot's best-matching region."""
        return 1.0 - self.distance


@dataclass(frozen=True)
class SearchOptions:
    """Knobs of one search; defaults come from settings (``RECOMMENDER_*``)."""

    ef_search: int  # snapshot -> items: the walk of each region probe
    iterative_scan: str
    max_scan_tuples: int
    exact_below_rows: int = 0
    exact_fallback: bool = True
    ef_search_snapshots: int = 200  # item -> snapshots: the walk of the one probe
    # Either walk on a style's own graph (a one-style filter): ef_search times this.
    ef_search_style_factor: float = 1.0
    ef_search_piece: int = 80  # more like this piece: the one garment's walk
    # Walk the graph even where the planner would rather sort every filtered row (enable_sort off): a
    # garment's search, whose kind post-filter the planner misjudges; a walk that ends short is re-run exactly.
    walk_only: bool = False

    @classmethod
    def from_settings(cls, **overrides) -> SearchOptions:
        values = {
            "ef_search": settings.RECOMMENDER_EF_SEARCH,
            "ef_search_snapshots": settings.RECOMMENDER_EF_SEARCH_SNAPSHOTS,
            "ef_search_style_factor": settings.RECOMMENDER_EF_SEARCH_STYLE_FACTOR,
            "ef_search_piece": settings.RECOMMENDER_EF_SEARCH_PIECE,
            "iterative_scan": settings.RECOMMENDER_ITERATIVE_SCAN,
            "max_scan_tuples": settings.RECOMMENDER_MAX_SCAN_TUPLES,
            "exact_below_rows": settings.RECOMMENDER_EXACT_BELOW_ROWS,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        if values["iterative_scan"] not in ITERATIVE_SCAN_MODES:
            raise ValueError(f"iterative_scan must be one of {ITERATIVE_SCAN_MODES}")
        return cls(**values)


@dataclass(frozen=True)
class Query:
    """One search: what is searched (``kind``), with which query vectors, under which filters.

    The query vectors are either given (``vectors``: an upload, the benchmark, an expanded query)
    or read by the statement itself from a stored image's rows (``source``: ("snapshot", id)
    reads its ``regions``, all of them when None).
    """

    kind: Kind
    model_version: ModelVersion
    k: int
    filters: Filters
    vectors: np.ndarray | None = None  # (n, dim) float32
    source: tuple[Kind, int] | None = None
    exclude_ids: tuple[int, ...] = ()
    regions: tuple[int, ...] | None = None

    @property
    def stored_regions(self) -> int:
        """Region rows per snapshot in this version (1 for a one-region model)."""
        return max(1, int(self.model_version.max_regions or 1))

    @property
    def single_vector(self) -> bool:
        """One query vector: an item's descriptor (stored or uploaded)."""
        if self.source is not None:
            return self.source[0] == "item"
        return self.vectors is not None and len(self.vectors) == 1

    def split(self, parts: int) -> tuple[Query, ...]:
        """This query's vectors (or stored regions) in up to ``parts`` interleaved shares, so each
        share holds whole-photo and close-up windows alike; () when there is nothing to split."""
        if parts < 2:
            return ()
        if self.vectors is not None:
            if len(self.vectors) < 2:
                return ()
            shares = min(parts, len(self.vectors))
            return tuple(dataclasses.replace(self, vectors=self.vectors[i::parts]) for i in range(shares))
        if self.source is None or self.source[0] != "snapshot":
            return ()
        regions = self.regions if self.regions is not None else tuple(range(self.stored_regions))
        if len(regions) < 2:
            return ()
        return tuple(dataclasses.replace(self, regions=regions[i::parts]) for i in range(min(parts, len(regions))))


def query_vectors_array(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """Query descriptors as a (n, dim) float32 array; ``ValueError`` for another shape or non-finite values."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError("query vectors must be a 2-d sequence (n, dim)")
    if not np.all(np.isfinite(array)):
        raise ValueError("query vector has non-finite values")
    return array
