import keras
import numpy as np
import pytest

from ml import layers, ops
from ml.regions import REGION_SCHEMES, region_masks


@pytest.fixture
def fmap(rng):
    return rng.random((2, 5, 4, 6)).astype(np.float32)  # (batch, h, w, c), non-negative


def np_gem(x, p, weights=None):
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    powered = np.maximum(flat, 1e-6) ** p
    if weights is None:
        return powered.mean(axis=1) ** (1 / p)
    return np.einsum("rn,bnc->brc", weights, powered) ** (1 / p)


def test_pooling_ops_match_numpy(fmap):
    np.testing.assert_allclose(ops.spoc(fmap), fmap.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(ops.mac(fmap), fmap.max(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(ops.gem(fmap, 3.0), np_gem(fmap, 3.0), rtol=1e-4)
    np.testing.assert_allclose(ops.gem(fmap, 1.0), fmap.mean(axis=(1, 2)), rtol=1e-4)


def test_region_pooling_matches_numpy(fmap):
    masks = region_masks("multiscale32", 5, 4)
    flat = fmap.reshape(2, 20, 6)
    np.testing.assert_allclose(ops.spoc(fmap, masks), np.einsum("rn,bnc->brc", masks, flat), rtol=1e-5)
    np.testing.assert_allclose(ops.gem(fmap, 2.5, masks), np_gem(fmap, 2.5, masks), rtol=1e-4)
    support = masks > 0
    ref = np.stack([[flat[b][support[r]].max(axis=0) for r in range(len(masks))] for b in range(2)])
    np.testing.assert_allclose(ops.mac(fmap, masks), ref, rtol=1e-5)
    # region 0 is the whole map
    np.testing.assert_allclose(ops.spoc(fmap, masks)[:, 0], ops.spoc(fmap), rtol=1e-5)
    # per-sample masks
    per_sample = np.stack([masks[:3], masks[3:6]])
    np.testing.assert_allclose(ops.spoc(fmap, per_sample)[1], np.asarray(ops.spoc(fmap, masks))[1, 3:6], rtol=1e-5)


@pytest.mark.parametrize("scheme", sorted(REGION_SCHEMES))
def test_region_schemes(scheme):
    masks = region_masks(scheme, 19, 13)
    assert masks.shape[0] <= 32
    np.testing.assert_allclose(masks.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(masks[0], 1 / (19 * 13), rtol=1e-5)
    assert region_masks(scheme, 1, 1).shape == (len(REGION_SCHEMES[scheme]), 1)


def test_gem_p_is_learnable_and_starts_at_3(fmap):
    layer = layers.GeM()
    layer(fmap)
    assert float(np.asarray(layer.p)) == pytest.approx(3.0)
    assert len(layer.trainable_variables) == 1


@pytest.mark.parametrize("pooling", [["spoc", "gem"], ["mac"], ["gem", "spoc", "mac"]])
def test_cgd_head_shapes_and_norms(fmap, pooling):
    head = layers.CGDHead(pooling, dim=8)
    out = np.asarray(head(fmap))
    assert out.shape == (2, 8 * len(pooling))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    masks = region_masks("multiscale32", 5, 4)
    regions = np.asarray(head(fmap, masks=masks))
    assert regions.shape == (2, len(masks), 8 * len(pooling))
    np.testing.assert_allclose(regions[:, 0], out, rtol=1e-4, atol=1e-6)
    desc, first = head(fmap, return_branches=True)
    assert first.shape == (2, 8)


def test_cgd_head_reference(fmap):
    head = layers.CGDHead(["spoc", "gem"], dim=3)
    out = np.asarray(head(fmap))
    w_spoc, w_gem = [np.asarray(p.kernel) for p in head.projections]
    norm = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    ref = norm(np.concatenate([norm(fmap.mean(axis=(1, 2)) @ w_spoc), norm(np_gem(fmap, 3.0) @ w_gem)], axis=1))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6)


def test_head_without_projection_keeps_channels(fmap):
    out = np.asarray(layers.CGDHead(["spoc"], dim=None)(fmap))
    ref = fmap.mean(axis=(1, 2))
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [layers.SPoC(), layers.MAC(), layers.GeM(p=2.0), layers.L2Normalize(), layers.CGDHead(["spoc", "gem"], dim=4)],
    ids=lambda layer: type(layer).__name__,
)
def test_layers_round_trip_through_keras_saving(tmp_path, fmap, layer):
    inputs = keras.Input((5, 4, 6))
    model = keras.Model(inputs, layer(inputs))
    expected = np.asarray(model(fmap))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(fmap)), expected, rtol=1e-5, atol=1e-6)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
