"""Thin serialisable Keras layers over :mod:`ml.ops`, and the Combined Global Descriptor head.

CGD: Jun et al. 2019, "Combination of Multiple Global Descriptors for Image
Retrieval", https://arxiv.org/abs/1903.10663. Each pooling branch is projected
(dense, no bias) and L2-normalised; the branches are concatenated and normalised again.
"""

from __future__ import annotations

import keras
from keras import layers

from ml import ops as mlops

PACKAGE = "lookbook"


@keras.saving.register_keras_serializable(package=PACKAGE)
class SPoC(layers.Layer):
    def call(self, x, masks=None):
        return mlops.spoc(x, masks)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MAC(layers.Layer):
    def call(self, x, masks=None):
        return mlops.mac(x, masks)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GeM(layers.Layer):
    """GeM pooling with a learnable exponent ``p`` (initialised to ``p``)."""

    def __init__(self, p: float = 3.0, trainable_p: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.initial_p = float(p)
        self.trainable_p = bool(trainable_p)
        self.p = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_p), trainable=self.trainable_p, name="p"
        )

    def call(self, x, masks=None):
        return mlops.gem(x, self.p, masks)

    def get_config(self):
        return {**super().get_config(), "p": self.initial_p, "trainable_p": self.trainable_p}


@keras.saving.register_keras_serializable(package=PACKAGE)
class L2Normalize(layers.Layer):
    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return mlops.l2_normalize(x, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


POOLING = {"spoc": SPoC, "gem": GeM, "mac": MAC}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CGDHead(layers.Layer):
    """Feature map (batch, h, w, c) -> descriptor (batch, d), or (batch, regions, d) with masks.

    ``call(x, masks=None, return_branches=False)``: with ``return_branches`` it also returns
    the first branch's projection before normalisation (the auxiliary classifier's input).
    Descriptors are float32 even when the projections run under a mixed-precision policy.
    """

    def __init__(self, pooling=("spoc", "gem"), dim: int | None = 512, gem_p: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.pooling = list(pooling)
        self.dim = dim
        self.gem_p = float(gem_p)
        self.pools = [
            GeM(self.gem_p, name=f"{kind}_pool") if kind == "gem" else POOLING[kind](name=f"{kind}_pool")
            for kind in self.pooling
        ]
        self.projections = (
            [layers.Dense(dim, use_bias=False, name=f"{kind}_proj") for kind in self.pooling] if dim else None
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.projections:
            for proj in self.projections:
                proj.build((None, channels))
        self.built = True

    def call(self, x, masks=None, return_branches=False):
        branches = []
        first = None
        for i, pool in enumerate(self.pools):
            v = pool(x, masks=masks)  # (batch, c) or (batch, regions, c)
            if self.projections:
                v = self.projections[i](v)
            # float32 from here, whatever the projections computed in (mixed precision): normalising
            # a float16 vector can overflow, and descriptors are always float32
            v = keras.ops.cast(v, "float32")
            if i == 0:
                first = v
            branches.append(mlops.l2_normalize(v))
        out = mlops.l2_normalize(keras.ops.concatenate(branches, axis=-1))
        return (out, first) if return_branches else out

    def compute_output_shape(self, input_shape):
        per = self.dim or input_shape[-1]
        return (input_shape[0], per * len(self.pooling))

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling, "dim": self.dim, "gem_p": self.gem_p}
