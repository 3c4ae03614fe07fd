import numpy as np
import pytest
from PIL import Image

from ml import artifact
from ml.config import ModelConfig
from ml.training import TrainOptions, finetune, train


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
    # one cache per record set and output: train final maps, train stage-2 input maps (cached in the
    # same backbone pass), val final maps; a second run with the same records does not re-embed
    assert len(list((tmp_path / "cache").glob("features-*"))) == 3


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
    from ml.training.feature_cache import cache_key as _key
    from ml.training.feature_cache import validate_records as _validate

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


def _features_dirs(cache):
    return sorted(p.name for p in cache.glob("features-*"))


def _stage2_options(**kwargs):
    base = {"classes_per_batch": 8, "item_views": 2, "snapshot_views": 2}
    return TrainOptions(**{**base, **kwargs})


@pytest.fixture(scope="module")
def stage1_artifact(tmp_path_factory, records, weights_cache):
    """A briefly trained stage-1 artifact; its backbone pass also cached the stage-2 input maps."""
    root = tmp_path_factory.mktemp("stage1")
    options = _stage2_options(epochs=4, learning_rate=3e-3)
    train(
        records, config(), root / "model", options=options, cache_dir=root / "cache", backbone_cache_dir=weights_cache
    )
    return root / "model", root / "cache"


def test_stage1_caches_the_stage2_input_in_the_same_pass(stage1_artifact):
    _, cache = stage1_artifact
    assert len(_features_dirs(cache)) == 2  # final maps + the maps that feed the last stage


def test_finetune_improves_the_training_loss_and_the_artifact_round_trips(tmp_path, records, stage1_artifact):
    from ml.model import Embedder

    source, cache = stage1_artifact
    before = _features_dirs(cache)
    embedder = artifact.load(source)
    options = _stage2_options(stage2_epochs=6, backbone_learning_rate=1e-3, stage2_learning_rate=1e-3)
    metrics = finetune(records, embedder, tmp_path / "s2", options=options, cache_dir=cache)
    assert _features_dirs(cache) == before  # the stage-2 input came from the stage-1 pass
    history = artifact.metadata(tmp_path / "s2")["info"]["stage2_history"]
    losses = [h["loss"] for h in history]
    assert len(losses) == 6 and all(np.isfinite(losses))
    # measurably better on the training posts: lower loss or higher mAP
    assert losses[-1] < 0.8 * losses[0] or metrics["train_map21_after"] > metrics["train_map21_before"] + 5, metrics
    assert not list((tmp_path / "s2").glob("checkpoint-*"))

    stage1, stage2 = artifact.load(source), artifact.load(tmp_path / "s2")
    assert isinstance(stage2, Embedder) and artifact.verify(tmp_path / "s2") == stage1.config
    assert artifact.checksum(tmp_path / "s2") != artifact.checksum(source)
    paths = [r[0] for r in records[:4]]
    snaps = [r[0] for r in records if r[2] == "snapshot"][:2]
    # the reloaded artifact embeds exactly as the model that was trained ...
    np.testing.assert_array_equal(stage2.embed_items(paths), embedder.embed_items(paths))
    np.testing.assert_array_equal(stage2.embed_snapshots(snaps), embedder.embed_snapshots(snaps))
    # ... and differently from its stage-1 source: the backbone's end changed, its frozen start did not
    assert np.abs(stage2.embed_items(paths) - stage1.embed_items(paths)).max() > 1e-3
    for layer, changed in (("stem_conv", False), ("block10_project_conv", False), ("head_conv", True)):
        w1, w2 = (e.backbone.get_layer(layer).get_weights()[0] for e in (stage1, stage2))
        assert (not np.array_equal(w1, w2)) == changed, layer
    for bn in ("head_bn", "block15_dw_bn"):  # BatchNorm statistics stay frozen
        for a, b in zip(
            stage1.backbone.get_layer(bn).get_weights(), stage2.backbone.get_layer(bn).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)


def test_both_stages_in_one_run_with_early_stopping_on_val(tmp_path, records, weights_cache):
    options = _stage2_options(epochs=2, stage2_epochs=2, eval_every=1, item_views=1, snapshot_views=1)
    metrics = train(
        records,
        config(),
        tmp_path / "m",
        val_records=records[:8],
        options=options,
        cache_dir=tmp_path / "c",
        backbone_cache_dir=weights_cache,
    )
    assert metrics["epochs"] == 2 and metrics["stage2_epochs"] == 2
    assert "val_map21" in metrics and "stage2_val_map21" in metrics
    assert artifact.metadata(tmp_path / "m")["info"]["kind"] == "finetuned"
    assert not list((tmp_path / "m").glob("checkpoint-*"))


def test_mixed_precision_modes():
    from ml.training import use_mixed_precision

    assert use_mixed_precision("auto") is False  # no GPU on this machine
    assert use_mixed_precision("on") is True and use_mixed_precision("off") is False
    with pytest.raises(ValueError, match="mixed_precision"):
        use_mixed_precision("maybe")
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainOptions(mixed_precision="fp16")


def test_mixed_precision_training_runs_and_restores_float32(tmp_path, records, stage1_artifact):
    import keras

    from ml.training import mixed_precision_policy

    source, cache = stage1_artifact
    embedder = artifact.load(source)
    # inside the policy: float16 compute in the projections, float32 L2-normalised descriptors out
    maps = np.random.default_rng(0).random((2, 3, 3, 1280)).astype(np.float32)
    with mixed_precision_policy(embedder.head.projections):
        assert embedder.head.projections[0].compute_dtype == "float16"
        out = embedder.head(maps)
        assert out.dtype == "float32"
        np.testing.assert_allclose(np.linalg.norm(np.asarray(out), axis=1), 1.0, rtol=1e-5)
    assert embedder.head.projections[0].compute_dtype == "float32"

    options = _stage2_options(stage2_epochs=2, mixed_precision="on")
    metrics = finetune(records, embedder, tmp_path / "mp", options=options, cache_dir=cache)
    assert metrics["mixed_precision"] is True
    losses = [h["loss"] for h in artifact.metadata(tmp_path / "mp")["info"]["stage2_history"]]
    assert all(np.isfinite(losses))
    # nothing leaks: the global policy and every layer are float32 again
    assert keras.config.dtype_policy().name == "float32"
    assert {layer.dtype_policy.name for layer in embedder.backbone.layers} == {"float32"}
    items = artifact.load(tmp_path / "mp").embed_items([r[0] for r in records[:3]])
    assert items.dtype == np.float32 and np.all(np.isfinite(items))
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)


def test_item_row_categories_follow_the_cache_row_order():
    from ml.training.feature_cache import item_row_categories, validate_records

    records = [("s.png", 0, "snapshot"), ("a.png", 0, "item", 4), ("b.png", 0, "item", None), ("c.png", 1, "item", 2)]
    np.testing.assert_array_equal(item_row_categories(records, 2), [4, 4, -1, -1, 2, 2])
    assert validate_records(records)[1] == ("a.png", 0, "item")  # the cache does not depend on categories
    with pytest.raises(ValueError):
        validate_records([("a.png", 0, "item", 1, "extra")])


def test_category_loss_trains_and_changes_the_descriptors(tmp_path, records, weights_cache):
    # two garment groups by post parity: a group-aware head must differ from an instance-only one
    with_categories = [(*r, 1 + r[1] % 2) if r[2] == "item" else r for r in records]
    options = TrainOptions(epochs=4, classes_per_batch=4, item_views=1, snapshot_views=1)
    common = {"options": options, "cache_dir": tmp_path / "c", "backbone_cache_dir": weights_cache, "seed": 0}
    plain = train(with_categories, config(), tmp_path / "plain", **common)
    grouped = train(with_categories, config(category_weight=1.0), tmp_path / "grouped", **common)
    assert np.isfinite(grouped["train_map21_after"]) and np.isfinite(plain["train_map21_after"])
    a = artifact.load(tmp_path / "plain").embed_items([records[0][0]])
    b = artifact.load(tmp_path / "grouped").embed_items([records[0][0]])
    assert not np.allclose(a, b, atol=1e-4)
    assert artifact.verify(tmp_path / "grouped").category_weight == 1.0


def test_a_garment_artifact_trains_on_from_its_weights_and_keeps_its_parser(tmp_path, records, stage1_artifact):
    """Retraining from a served garment model (the shipped one): stage 1 leaves the backbone, so the
    parser stays valid and the artifact still serves garments; a final-map parser refuses stage 2."""
    import dataclasses

    from ml.model import Embedder
    from ml.parser import ParserConfig, build_parser_head

    source, _ = stage1_artifact
    base = artifact.load(source)
    parser_config = ParserConfig(width=16)
    parser = build_parser_head(parser_config, base.config.backbone)
    garments = dataclasses.replace(base.config, regions="garments")
    start = Embedder(garments, base.backbone, base.head_model, parser, parser_config)
    head_before = [w.copy() for w in start.head_model.get_weights()]
    options = _stage2_options(epochs=2, learning_rate=3e-3)
    train(records, garments, tmp_path / "model", options=options, cache_dir=tmp_path / "cache", embedder=start)

    trained = artifact.load(tmp_path / "model")
    assert trained.config.regions == "garments" and trained.parser is not None
    np.testing.assert_array_equal(trained.parser.get_weights()[0], parser.get_weights()[0])
    assert any(not np.array_equal(a, b) for a, b in zip(trained.head_model.get_weights(), head_before, strict=True))
    assert trained.embed_looks([records[-1][0]]).vectors.shape[1] == trained.config.max_regions

    final_map = ParserConfig(width=16, final_map=True)
    tied = Embedder(
        garments, base.backbone, base.head_model, build_parser_head(final_map, "efficientnet_lite0"), final_map
    )
    with pytest.raises(ValueError, match="stage 2 changes the final map"):
        finetune(records, tied, tmp_path / "ft", options=_stage2_options(stage2_epochs=1), cache_dir=tmp_path / "c2")
