"""Class-balanced P x K batches drawn from a feature cache, as a ``keras.utils.PyDataset``."""

from __future__ import annotations

import keras
import numpy as np

from ml.training.feature_cache import FeatureCache


class PKSampler(keras.utils.PyDataset):
    """Each batch: ``classes_per_batch`` classes, ``items_per_class`` item rows and ``snapshots_per_class``
    snapshot rows of each (with replacement only when a class has fewer).

    Batches come from the shared ``rng`` in the order they are asked for (the index is ignored), so a
    seed gives the same batches wherever the sampler is iterated. One epoch = ceil(classes / P) batches.
    """

    def __init__(self, cache: FeatureCache, classes: np.ndarray, options, rng: np.random.Generator):
        super().__init__()
        self.cache, self.classes, self.options, self.rng = cache, classes, options, rng
        self.class_index = {c: i for i, c in enumerate(classes.tolist())}
        self.item_rows = {c: np.flatnonzero(cache.item_classes == c) for c in classes.tolist()}
        self.snap_rows = {c: np.flatnonzero(cache.snapshot_classes == c) for c in classes.tolist()}

    def __len__(self) -> int:
        return max(1, int(np.ceil(len(self.classes) / self.options.classes_per_batch)))

    def __getitem__(self, index):
        """``(item maps, item labels, snapshot maps, snapshot labels, item categories)``: float32 maps, int
        labels; categories are -1 where unknown (all of them when the cache has none)."""
        irows, yi, srows, ys = self.sample_rows()
        categories = self.cache.item_categories
        ci = categories[np.asarray(irows, dtype=np.int64)] if categories is not None else np.full(len(irows), -1)
        return _load_rows(self.cache.items, irows), yi, _load_rows(self.cache.snapshots, srows), ys, ci

    def sample_rows(self):
        options, rng = self.options, self.rng
        chosen = rng.choice(self.classes, size=min(options.classes_per_batch, len(self.classes)), replace=False)
        irows, ilabels, srows, slabels = [], [], [], []
        for c in chosen.tolist():
            if len(self.item_rows[c]):
                rows, k = self.item_rows[c], options.items_per_class
                picks = rng.choice(rows, k, replace=len(rows) < k)
                irows += sorted(picks.tolist())
                ilabels += [self.class_index[c]] * len(picks)
            if len(self.snap_rows[c]):
                rows, k = self.snap_rows[c], options.snapshots_per_class
                picks = rng.choice(rows, k, replace=len(rows) < k)
                srows += sorted(picks.tolist())
                slabels += [self.class_index[c]] * len(picks)
        return irows, np.array(ilabels), srows, np.array(slabels)


def _load_rows(array, rows) -> np.ndarray:
    """``array[rows]`` as float32, read in ascending row order (sequential on a memory map)."""
    order = np.argsort(rows)
    data = np.asarray(array[np.asarray(rows)[order]], dtype=np.float32)
    out = np.empty_like(data)
    out[order] = data
    return out
