"""The descriptor model: backbone feature map -> CGD head -> L2-normalised descriptors.

:class:`Embedder` turns images into descriptors: one per item, ``max_regions`` per
snapshot (region 0 = the whole snapshot; see :mod:`ml.regions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.config import ModelConfig
from ml.images import load_batch
from ml.regions import region_masks


def _numpy(tensor) -> np.ndarray:
    from keras import ops

    return ops.convert_to_numpy(tensor)


def build_head(config: ModelConfig):
    """A Keras model (batch, h, w, c) -> (batch, d) holding the CGD head (saved with the artifact)."""
    import keras

    from ml.backbones import feature_channels
    from ml.layers import CGDHead

    inputs = keras.Input((None, None, feature_channels(config.backbone)), name="feature_map")
    head = CGDHead(config.pooling, config.dim, config.gem_p, name="cgd")
    return keras.Model(inputs, head(inputs), name="descriptor_head")


def feature_map_shape(backbone, size: tuple[int, int]) -> tuple[int, int]:
    shape = backbone.compute_output_shape((1, size[0], size[1], 3))
    return int(shape[1]), int(shape[2])


class Embedder:
    """Images -> descriptors with a fixed backbone + head and the config's preprocessing."""

    def __init__(self, config: ModelConfig, backbone, head_model):
        from ml.layers import CGDHead

        self.config = config
        self.backbone = backbone
        self.head_model = head_model
        self.head: CGDHead = head_model.get_layer("cgd")
        self.dim = int(config.descriptor_dim)
        self.max_regions = int(config.max_regions)
        self._snapshot_masks = region_masks(config.regions, *feature_map_shape(backbone, config.snapshot_size))

    @classmethod
    def build(cls, config: ModelConfig, *, cache_dir: str | Path | None = None) -> Embedder:
        """A fresh model: backbone with ``config.weights``, randomly initialised head."""
        from ml.backbones import build_backbone

        return cls(config, build_backbone(config.backbone, config.weights, cache_dir=cache_dir), build_head(config))

    # -- feature maps -----------------------------------------------------------------------------
    def _features(self, pixels: np.ndarray) -> np.ndarray:
        from ml.backbones import preprocess

        return np.asarray(self.backbone.predict_on_batch(preprocess(self.config.backbone, pixels)))

    def item_feature_maps(self, images: Sequence) -> np.ndarray:
        return self._features(load_batch(images, (self.config.item_size,) * 2))

    def snapshot_feature_maps(self, images: Sequence) -> np.ndarray:
        return self._features(load_batch(images, self.config.snapshot_size))

    # -- descriptors ------------------------------------------------------------------------------
    def _check(self, images, batch_size):
        if isinstance(images, (str, Path)) or not isinstance(images, Sequence):
            images = list(images) if not isinstance(images, (str, Path)) else [images]
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        return images

    def embed_items(self, images: Sequence, batch_size: int = 32, progress=None) -> np.ndarray:
        """(n, dim) float32, L2-normalised; images are PIL images (RGB) or paths."""
        images = self._check(images, batch_size)
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            out[start : start + len(chunk)] = _numpy(self.head(self.item_feature_maps(chunk)))
            if progress:
                progress((start + len(chunk)) / len(images), "embedding items")
        return out

    def embed_snapshots(self, images: Sequence, batch_size: int = 8, progress=None) -> np.ndarray:
        """(n, max_regions, dim) float32, L2-normalised rows; row 0 describes the whole snapshot."""
        images = self._check(images, batch_size)
        out = np.zeros((len(images), self.max_regions, self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            maps = self.snapshot_feature_maps(chunk)
            out[start : start + len(chunk)] = _numpy(self.head(maps, masks=self._snapshot_masks))
            if progress:
                progress((start + len(chunk)) / len(images), "embedding snapshots")
        return out
