import numpy as np
import pytest
from PIL import Image

from ml import artifact
from ml.config import ModelConfig
from ml.training import TrainOptions, train


def synthetic_posts(tmp_path, n_posts=8, n_items=3, seed=0):
    """Records for tiny posts: a snapshot with textured patches pasted in, the patches as items."""
    rng = np.random.default_rng(seed)
    records = []
    for post in range(n_posts):
        snapshot = np.full((160, 112, 3), 200, np.uint8)
        for item in range(n_items):
            h, w = rng.integers(30, 50, 2)
            colour = rng.integers(0, 255, 3)
            patch = np.clip(colour + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            patch[:: rng.integers(3, 8)] = rng.integers(0, 255, 3)  # stripes
            y, x = rng.integers(0, 160 - h), rng.integers(0, 112 - w)
            snapshot[y : y + h, x : x + w] = patch
            path = tmp_path / f"p{post}_i{item}.png"
            Image.fromarray(patch).rotate(float(rng.uniform(-15, 15)), fillcolor=(255, 255, 255)).save(path)
            records.append((str(path), post, "item"))
        path = tmp_path / f"p{post}_s.png"
        Image.fromarray(snapshot).save(path)
        records.append((str(path), post, "snapshot"))
    return records


def config(**kwargs):
    return ModelConfig(backbone="efficientnet_lite0", dim=32, item_size=64, snapshot_size=(128, 96), **kwargs)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return synthetic_posts(tmp_path_factory.mktemp("posts"))


def test_short_training_raises_train_map_and_writes_an_artifact(tmp_path, records, weights_cache):
    options = TrainOptions(epochs=25, classes_per_batch=8, item_views=2, snapshot_views=2, learning_rate=3e-3)
    seen = []
    metrics = train(
        records,
        config(),
        tmp_path / "model",
        val_records=records[:8],
        options=options,
        cache_dir=tmp_path / "cache",
        backbone_cache_dir=weights_cache,
        progress=lambda f, m: seen.append(f),
    )
    assert metrics["train_map21_after"] > metrics["train_map21_before"] + 5, metrics
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert "val_map21" in metrics
    embedder = artifact.load(tmp_path / "model")
    assert embedder.embed_items([records[0][0]]).shape == (1, 64)
    # the feature cache is reused: a second run with the same records does not re-embed
    assert len(list((tmp_path / "cache").glob("features-*"))) == 2


@pytest.mark.parametrize(
    "overrides",
    [{"loss": "triplet"}, {"aux_weight": 0.5}, {"regions": "global"}, {"loss": "triplet", "regions": "global"}],
)
def test_loss_variants_train(tmp_path, records, weights_cache, overrides):
    # a post without items and one without a snapshot make the batch sizes vary between steps
    records = records + [(records[-1][0], 99, "snapshot"), (records[0][0], 98, "item")]
    options = TrainOptions(epochs=3, classes_per_batch=4, item_views=1, snapshot_views=1)
    metrics = train(
        records,
        config(**overrides),
        tmp_path / "m",
        options=options,
        cache_dir=tmp_path / "c",
        backbone_cache_dir=weights_cache,
    )
    assert np.isfinite(metrics["train_map21_after"])


def test_bad_records_raise(tmp_path):
    with pytest.raises(ValueError, match="records"):
        train([("x.png", 0, "video")], config(), tmp_path)


def test_in_memory_images_are_cached_by_content(tmp_path, records, weights_cache):
    from ml.training import _key, _validate

    pil_records = [(Image.open(path).convert("RGB"), cls, kind) for path, cls, kind in records[:8]]
    cfg = config()
    key = _key(cfg, _validate(pil_records), (1, 1), 0)
    copies = [(img.copy(), cls, kind) for img, cls, kind in pil_records]
    assert _key(cfg, _validate(copies), (1, 1), 0) == key
    changed = [(Image.new("RGB", (8, 8)), *pil_records[0][1:])] + pil_records[1:]
    assert _key(cfg, _validate(changed), (1, 1), 0) != key
    options = TrainOptions(epochs=1, classes_per_batch=2, item_views=1, snapshot_views=1)
    metrics = train(
        pil_records, cfg, tmp_path / "m", options=options, cache_dir=tmp_path / "c", backbone_cache_dir=weights_cache
    )
    assert metrics["epochs"] == 1
