"""Training options, the progress callback type and the mixed-precision switches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[float, str], None]
KINDS = ("snapshot", "item")
MIXED_PRECISION = ("auto", "on", "off")


@dataclass
class TrainOptions:
    item_views: int = 4
    snapshot_views: int = 3
    epochs: int = 30  # stage 1
    classes_per_batch: int = 32
    items_per_class: int = 3
    snapshots_per_class: int = 1
    learning_rate: float = 1e-3  # stage 1 (head)
    eval_every: int = 5  # epochs between validation checks (with val_records) and checkpoints
    patience: int = 2  # checks without improvement before stopping
    batch_size: int = 16  # backbone batch when caching
    checkpoint: bool = True
    mixed_precision: str = "auto"  # "auto": on only when TensorFlow sees a GPU; "on"; "off"
    # stage 2: fine-tuning the end of the backbone with the head
    stage2_epochs: int = 0  # 0: stage 1 only (train); finetune() defaults to 10 when this is 0
    finetune_stages: int = 1  # last backbone stages fine-tuned (Lite: + the top conv; ResNet50: conv5)
    backbone_learning_rate: float = 1e-4
    stage2_learning_rate: float = 1e-4  # head (and ArcFace weights) in stage 2
    # stage 1 also caches the stage-2 input maps in its backbone pass (a little more disk), so a
    # later finetune() from its artifact needs no second pass over the images
    prepare_stage2: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.finetune_stages < 1:
            raise ValueError("finetune_stages must be >= 1")


def use_mixed_precision(mode: str) -> bool:
    """Whether ``mode`` ("auto" | "on" | "off") means float16 compute here: "auto" = a GPU is visible."""
    if mode not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def mixed_precision_policy(layers, enabled: bool = True):
    """Run ``layers`` under the ``mixed_float16`` policy inside the block, restoring their policies after.

    Only these layers change: the global Keras policy is never touched, so nothing leaks to other code.
    """
    import keras

    layers = [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)] if enabled else []
    saved = [layer.dtype_policy for layer in layers]
    try:
        for layer in layers:
            layer.dtype_policy = keras.DTypePolicy("mixed_float16")
        yield
    finally:
        for layer, policy in zip(layers, saved, strict=True):
            layer.dtype_policy = policy
