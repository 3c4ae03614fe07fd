import json

import numpy as np
import pytest
from PIL import Image

from ml import artifact
from ml.config import ModelConfig
from ml.model import Embedder


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    config = ModelConfig(backbone="efficientnet_lite0", weights=None, dim=16, item_size=64, snapshot_size=(96, 64))
    embedder = Embedder.build(config)
    path = artifact.save(embedder, tmp_path_factory.mktemp("artifact") / "tiny")
    return path, embedder


@pytest.fixture
def images(rng):
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in [(80, 50), (40, 90), (64, 64)]]


def test_embedder_shapes_and_norms(tiny_artifact, images):
    _, embedder = tiny_artifact
    items = embedder.embed_items(images, batch_size=2)
    assert items.shape == (3, 32) and items.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(items, axis=1), 1.0, rtol=1e-5)
    snaps = embedder.embed_snapshots(images, batch_size=2)
    assert snaps.shape == (3, embedder.max_regions, 32) and embedder.max_regions <= 32
    np.testing.assert_allclose(np.linalg.norm(snaps, axis=2), 1.0, rtol=1e-5)
    assert embedder.embed_items([], batch_size=4).shape == (0, 32)


def test_round_trip_gives_identical_descriptors(tiny_artifact, images, tmp_path):
    path, embedder = tiny_artifact
    loaded = artifact.load(path)
    assert loaded.config == embedder.config and loaded.dim == 32
    np.testing.assert_allclose(loaded.embed_items(images), embedder.embed_items(images), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.embed_snapshots(images), embedder.embed_snapshots(images), rtol=1e-5, atol=1e-6)
    # file paths work as well as PIL images
    images[0].save(tmp_path / "a.png")
    np.testing.assert_allclose(loaded.embed_items([tmp_path / "a.png"]), loaded.embed_items(images[:1]), rtol=1e-5)


def test_checksum_is_stable_and_verify_passes(tiny_artifact):
    path, _ = tiny_artifact
    assert artifact.checksum(path) == artifact.checksum(path)
    assert len(artifact.checksum(path)) == 64
    assert artifact.verify(path).backbone == "efficientnet_lite0"


def _copy(path, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(path, target)
    return target


def test_verify_detects_corruption(tiny_artifact, tmp_path):
    path = _copy(tiny_artifact[0], tmp_path)
    with open(path / "head.weights.h5", "r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage\x00")
    with pytest.raises(artifact.ArtifactError, match="checksum mismatch"):
        artifact.verify(path)
    with pytest.raises(artifact.ArtifactError):
        artifact.load(path)


def test_verify_detects_missing_files_and_unknown_backbone(tiny_artifact, tmp_path):
    path = _copy(tiny_artifact[0], tmp_path)
    (path / "backbone.weights.h5").unlink()
    with pytest.raises(artifact.ArtifactError, match="missing file"):
        artifact.verify(path)
    manifest = json.loads((path / "config.json").read_text())
    manifest["model"]["backbone"] = "vgg16"
    (path / "config.json").write_text(json.dumps(manifest))
    with pytest.raises(artifact.ArtifactError, match="unknown backbone"):
        artifact.verify(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(artifact.ArtifactError, match="not valid JSON"):
        artifact.verify(path)
    with pytest.raises(artifact.ArtifactError, match="does not exist"):
        artifact.verify(tmp_path / "nowhere")


def test_create_pretrained(tmp_path, weights_cache):
    path = artifact.create_pretrained(tmp_path / "pre", backbone="efficientnet_lite0", cache_dir=weights_cache)
    config = artifact.verify(path)
    assert config.pooling == ["spoc"] and config.dim is None and config.weights == "imagenet"
    embedder = artifact.load(path)  # no conversion or download needed to load
    assert embedder.dim == 1280
    assert artifact.metadata(path)["info"]["kind"] == "pretrained"
