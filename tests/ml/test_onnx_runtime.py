"""The forward passes under ONNX Runtime (``Embedder.use_onnx``) against the Keras models they export."""

import numpy as np
import pytest
from PIL import Image

from ml import artifact
from tests.ml.test_parser import ccp_tree, embedder, parser_artifact, small_config  # noqa: F401 - fixtures


def _cosines(a, b):
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def both(parser_artifact, tmp_path_factory):  # noqa: F811 - the imported fixture
    """The artifact with a parser loaded twice: under Keras, and under ONNX Runtime with its exports."""
    _, path = parser_artifact
    exports = tmp_path_factory.mktemp("onnx")
    fast = artifact.load(path)
    fast.use_onnx(exports)
    return artifact.load(path), fast, exports


def test_items_and_looks_under_onnx_equal_keras(both, ccp_tree):  # noqa: F811
    keras_model, onnx_model, exports = both
    assert (keras_model.runtime, onnx_model.runtime) == ("keras", "onnx")
    photos = [ccp_tree / "photos" / f"{i:04d}.jpg" for i in (1, 2, 3)]
    items = [Image.open(p).convert("RGB").crop((10, 20, 90, 140)) for p in photos]
    assert _cosines(onnx_model.embed_items(items), keras_model.embed_items(items)).min() >= 1 - 1e-4
    slow, fast = keras_model.embed_looks(photos), onnx_model.embed_looks(photos)
    assert fast.counts.tolist() == slow.counts.tolist()
    for i in range(len(photos)):  # the same garments, each described the same
        assert [(g.group, g.box) for g in fast.garments[i]] == [(g.group, g.box) for g in slow.garments[i]]
        rows = int(slow.counts[i])
        assert _cosines(fast.vectors[i, :rows], slow.vectors[i, :rows]).min() >= 1 - 1e-4
    windows = onnx_model.embed_looks(photos, scheme="multiscale6")  # the backbone at the snapshot size too
    assert _cosines(
        windows.vectors[:, 0], keras_model.embed_looks(photos, scheme="multiscale6").vectors[:, 0]
    ).min() >= (1 - 1e-4)
    names = sorted(p.name for p in exports.glob("*.onnx"))
    assert [n.split("-")[0] for n in names] == ["backbone", "backbone", "parser", "tapped"], names
    assert not list(exports.glob(".*tmp"))  # written whole, then renamed


def test_an_export_is_written_once_and_reused(both, parser_artifact, ccp_tree):  # noqa: F811
    _, fast, exports = both
    fast.embed_looks([ccp_tree / "photos" / "0001.jpg"])  # every export there, whatever ran before
    before = {p.name: p.stat().st_mtime_ns for p in exports.glob("*.onnx")}
    assert len(before) >= 3
    again = artifact.load(parser_artifact[1])
    again.use_onnx(exports)
    again.embed_looks([ccp_tree / "photos" / "0001.jpg"])  # the tapped pass, the parser, crops as items
    assert {p.name: p.stat().st_mtime_ns for p in exports.glob("*.onnx")} == before


def test_a_failed_export_leaves_that_pass_to_keras(parser_artifact, ccp_tree, tmp_path, monkeypatch, caplog):  # noqa: F811
    import ml.onnx_runtime

    def broken(*args, **kwargs):
        raise RuntimeError("tf2onnx cannot convert this")

    monkeypatch.setattr(ml.onnx_runtime, "export", broken)
    keras_model = artifact.load(parser_artifact[1])
    onnx_model = artifact.load(parser_artifact[1])
    onnx_model.use_onnx(tmp_path)
    photo = [ccp_tree / "photos" / "0002.jpg"]
    np.testing.assert_allclose(onnx_model.embed_looks(photo).vectors, keras_model.embed_looks(photo).vectors, atol=1e-6)
    assert "no ONNX Runtime for tapped" in caplog.text and not list(tmp_path.glob("*.onnx"))
