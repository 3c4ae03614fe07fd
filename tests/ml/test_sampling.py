import numpy as np

from ml.training import FeatureCache, TrainOptions
from ml.training.sampling import PKSampler


def _cache():
    """3 classes: class 0 with 4 items + 1 snapshot, class 1 with 1 item, class 2 with only a snapshot."""
    item_classes = np.array([0, 0, 0, 0, 1])
    snapshot_classes = np.array([0, 2])
    items = np.arange(5, dtype=np.float16).reshape(5, 1, 1, 1) * np.ones((5, 2, 2, 3), np.float16)
    snapshots = (10 + np.arange(2, dtype=np.float16)).reshape(2, 1, 1, 1) * np.ones((2, 3, 2, 3), np.float16)
    views = np.zeros
    return FeatureCache(items, item_classes, views(5), snapshots, snapshot_classes, views(2))


def test_batches_are_class_balanced_and_rows_match_their_labels():
    cache = _cache()
    classes = np.array([0, 1, 2])
    options = TrainOptions(classes_per_batch=2, items_per_class=3, snapshots_per_class=1)
    sampler = PKSampler(cache, classes, options, np.random.default_rng(0))
    assert len(sampler) == 2  # ceil(3 classes / 2 per batch)
    for index in range(20):
        xi, yi, xs, ys, ci = sampler[index]
        assert xi.dtype == np.float32 and xi.shape == (len(yi), 2, 2, 3) and xs.shape == (len(ys), 3, 2, 3)
        # every item row belongs to its label's class; 3 per class with items (with replacement for class 1)
        np.testing.assert_array_equal(cache.item_classes[xi[:, 0, 0, 0].astype(int)], classes[yi])
        np.testing.assert_array_equal(cache.snapshot_classes[(xs[:, 0, 0, 0] - 10).astype(int)], classes[ys])
        assert all(np.sum(yi == label) == 3 for label in np.unique(yi))
        assert len(np.unique(np.concatenate([yi, ys]))) == 2


def test_the_same_seed_gives_the_same_batches_whatever_the_index():
    options = TrainOptions(classes_per_batch=2)
    a = PKSampler(_cache(), np.array([0, 1, 2]), options, np.random.default_rng(7))
    b = PKSampler(_cache(), np.array([0, 1, 2]), options, np.random.default_rng(7))
    for index in range(5):
        for x, y in zip(a[index], b[4 - index], strict=True):
            np.testing.assert_array_equal(x, y)


def test_item_categories_follow_their_rows():
    cache = _cache()
    cache.item_categories = np.array([3, 3, 5, -1, 7])
    sampler = PKSampler(cache, np.array([0, 1, 2]), TrainOptions(classes_per_batch=3), np.random.default_rng(1))
    for index in range(10):
        xi, _, _, _, ci = sampler[index]
        np.testing.assert_array_equal(ci, cache.item_categories[xi[:, 0, 0, 0].astype(int)])
    plain = PKSampler(_cache(), np.array([0, 1, 2]), TrainOptions(), np.random.default_rng(1))
    assert (plain[0][4] == -1).all()
