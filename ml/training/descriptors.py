"""Descriptors of cached maps, the train/val score used for early stopping, and ArcFace imprinting."""

from __future__ import annotations

import numpy as np

from ml.training.feature_cache import FeatureCache


def _view0(cache: FeatureCache):
    items = np.flatnonzero(cache.item_view == 0)
    snaps = np.flatnonzero(cache.snapshot_view == 0)
    return items, snaps


def descriptors_from_cache(describe, cache: FeatureCache, masks, *, rows_items=None, rows_snaps=None, batch: int = 64):
    """Descriptors of cached maps: items (n, d) and snapshot regions (m, regions, d).

    ``describe(maps, masks=None)``: the head (stage 1) or the trainable backbone part + head (stage 2).
    """
    rows_items, rows_snaps = (rows_items, rows_snaps) if rows_items is not None else _view0(cache)
    from ml.model import _numpy

    items = [
        _numpy(describe(np.asarray(cache.items[rows_items[i : i + batch]], dtype=np.float32)))
        for i in range(0, len(rows_items), batch)
    ]
    snaps = [
        _numpy(describe(np.asarray(cache.snapshots[rows_snaps[i : i + batch]], dtype=np.float32), masks=masks))
        for i in range(0, len(rows_snaps), batch)
    ]
    return np.concatenate(items), np.concatenate(snaps)


def cache_map_score(describe, cache: FeatureCache, masks) -> float:
    """s->i mAP@21 (seed definition, region scoring) over the cache's plain views."""
    from ml.metrics import map_at_k_seed
    from ml.scoring import snapshot_item_scores

    rows_items, rows_snaps = _view0(cache)
    items, snaps = descriptors_from_cache(describe, cache, masks, rows_items=rows_items, rows_snaps=rows_snaps)
    relevant = cache.snapshot_classes[rows_snaps][:, None] == cache.item_classes[rows_items][None, :]
    return 100.0 * map_at_k_seed(snapshot_item_scores(snaps, items), relevant, 21)


def imprinted_class_weights(describe, cache: FeatureCache, masks, classes: np.ndarray) -> np.ndarray:
    """(classes, d) ArcFace weights: each class's mean descriptor of its plain item views (a class without
    items: of its snapshots' global descriptors), L2-normalised."""
    items, snaps = descriptors_from_cache(describe, cache, masks)
    rows_items, rows_snaps = _view0(cache)
    index = {c: i for i, c in enumerate(classes.tolist())}
    sums = np.zeros((len(classes), items.shape[1] if len(items) else snaps.shape[-1]), np.float64)
    counts = np.zeros(len(classes))
    for row, cls in zip(items, cache.item_classes[rows_items], strict=True):
        sums[index[int(cls)]] += row
        counts[index[int(cls)]] += 1
    for row, cls in zip(snaps[:, 0], cache.snapshot_classes[rows_snaps], strict=True):
        if counts[index[int(cls)]] == 0:  # a class without items: its snapshots' global descriptor
            sums[index[int(cls)]] += row
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)
