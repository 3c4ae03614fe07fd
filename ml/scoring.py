"""The ranking rule the serving side must reproduce (in SQL over pgvector).

Every descriptor is L2-normalised, so cosine similarity is the dot product (pgvector:
``1 - (a <=> b)`` or ``-(a <#> b)``). A snapshot is stored as ``max_regions`` vectors
(region 0 = the whole snapshot), an item as one vector, and

    score(snapshot, item) = max over the snapshot's regions r of cosine(region_r, item)

in both directions: a snapshot ranks items by it, an item ranks snapshots by it.
"""

from __future__ import annotations

import numpy as np


def _as_regions(snapshots: np.ndarray) -> np.ndarray:
    snapshots = np.asarray(snapshots, dtype=np.float32)
    if snapshots.ndim == 2:
        snapshots = snapshots[:, None, :]  # one global vector per snapshot
    if snapshots.ndim != 3:
        raise ValueError(f"snapshots must be (n, regions, dim) or (n, dim), got {snapshots.shape}")
    return snapshots


def snapshot_item_scores(snapshots: np.ndarray, items: np.ndarray, *, regions: int | None = None) -> np.ndarray:
    """(n_snapshots, n_items) scores: max over the first ``regions`` regions (all if None) of the cosine."""
    snaps = _as_regions(snapshots)
    items = np.asarray(items, dtype=np.float32)
    if items.ndim != 2 or items.shape[1] != snaps.shape[2]:
        raise ValueError(f"items must be (n, {snaps.shape[2]}), got {items.shape}")
    if regions is not None:
        snaps = snaps[:, :regions]
    sims = np.einsum("srd,id->sri", snaps, items, optimize=True)  # (snapshots, regions, items)
    return sims.max(axis=1)


def item_snapshot_scores(items: np.ndarray, snapshots: np.ndarray, **kwargs) -> np.ndarray:
    """(n_items, n_snapshots) scores, the same rule seen from the item."""
    return snapshot_item_scores(snapshots, items, **kwargs).T
