"""The garment parser: per-pixel garment groups from the descriptor backbone's own forward pass.

The backbone is tapped at strides 8, 16 and 32 (for EfficientNet-Lite the last block of
stages 2, 4 and 5: the 32-stride tap is the input of the last stage, so it does not change
when stage 2 fine-tunes that stage). A light FPN-style decoder (Lin et al. 2017,
https://arxiv.org/abs/1612.03144; separable convolutions as in DeepLabv3+'s decoder,
https://arxiv.org/abs/1802.02611) merges them top-down and predicts :data:`ml.garments.GROUPS`
logits at stride 4. With ``context`` (default) the stride-32 tap first goes through a light
atrous spatial pyramid with image pooling (DeepLabv3's ASPP, https://arxiv.org/abs/1706.05587,
here separable): which garment a region is (jeans or trousers, a dress or a top and a skirt)
depends on the whole figure more than on the local texture. One backbone pass gives both the
parse and the descriptors.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.config import from_known_keys
from ml.garments import GROUPS

TAP_STRIDES = (8, 16, 32)


@dataclass
class ParserConfig:
    """The parser head's shape and its garment post-processing (saved in the artifact)."""

    width: int = 64
    context: bool = True  # ASPP-style context at stride 32 (dilations 1, 2, 4 + image pooling)
    # also the backbone's final feature map (the descriptor's input) at stride 32: the most semantic
    # features, but they change when descriptor stage 2 fine-tunes the last stage (train per artifact)
    final_map: bool = False
    dropout: float = 0.1  # before the classifier
    classes: int = len(GROUPS)
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    # garments_from_parse; min_area is 0.8 x the CCP-Posts protocol's item threshold (0.5 % of the photo)
    min_area: float = 0.004
    keep_fraction: float = 0.2

    def __post_init__(self) -> None:
        self.groups = list(self.groups)
        if self.width < 8:
            raise ValueError("parser width must be at least 8")
        if self.classes != len(self.groups) or self.groups[0] != GROUPS[0]:
            raise ValueError("classes must equal len(groups), and groups[0] must be background")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if not (0 <= self.min_area < 1 and 0 <= self.keep_fraction <= 1):
            raise ValueError("min_area must be in [0, 1) and keep_fraction in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParserConfig:
        return from_known_keys(cls, data, "parser config")


def tap_layers(backbone_name: str) -> tuple[str, str, str]:
    """Names of the backbone layers whose outputs feed the parser (strides 8, 16, 32)."""
    from ml.backbones.efficientnet_lite import VARIANTS

    if backbone_name not in VARIANTS:
        raise ValueError(f"the garment parser needs an EfficientNet-Lite backbone, not {backbone_name!r}")
    repeats = VARIANTS[backbone_name].repeats
    last_block = [sum(repeats[: stage + 1]) - 1 for stage in range(len(repeats))]
    # stage 2 ends at stride 8, stage 4 at stride 16, stage 5 at stride 32 (stage 6 is fine-tuned)
    return tuple(f"block{last_block[stage]}_add" for stage in (2, 4, 5))


def tap_channels(backbone_name: str) -> tuple[int, int, int]:
    from ml.backbones.efficientnet_lite import VARIANTS

    channels = VARIANTS[backbone_name].channels
    return channels[2], channels[4], channels[5]


def taps_digest(backbone, backbone_name: str, *, final_map: bool = False) -> str:
    """A digest of the weights the parser's inputs depend on: the stem and blocks up to the stride-32
    tap (fine-tuning the last stage, descriptor stage 2, leaves them valid), or every layer with
    ``final_map``."""
    last = int(tap_layers(backbone_name)[-1].removeprefix("block").split("_")[0])
    keep = {"stem"} | {f"block{i}" for i in range(last + 1)}
    digest = hashlib.sha256()
    for layer in backbone.layers:
        if final_map or layer.name.split("_")[0] in keep:
            for weight in layer.weights:
                digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


def tapped_backbone(backbone, backbone_name: str):
    """One model image -> (stride-8, stride-16, stride-32 taps, final feature map), sharing ``backbone``'s layers."""
    import keras

    outputs = [backbone.get_layer(name).output for name in tap_layers(backbone_name)] + [backbone.output]
    return keras.Model(backbone.input, outputs, name=f"{backbone.name}_tapped")


def parser_inputs(outputs, config: ParserConfig) -> list:
    """The head's inputs from :func:`tapped_backbone`'s outputs (tap8, tap16, tap32, final map)."""
    tap8, tap16, tap32, final = outputs
    if config.final_map:
        tap32 = np.concatenate([np.asarray(tap32), np.asarray(final)], axis=-1)
    return [tap8, tap16, tap32]


def _separable(x, width: int, name: str):
    from keras import layers

    x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=name + "_conv")(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def _broadcast_like(inputs):
    from keras import ops

    pooled, like = inputs
    return ops.broadcast_to(pooled, (*ops.shape(like)[:3], ops.shape(pooled)[-1]))


def build_parser_head(config: ParserConfig, backbone_name: str):
    """A Keras model (tap8, tap16, tap32) -> logits (batch, 2 h8, 2 w8, classes) at stride 4."""
    import keras
    from keras import layers

    c8, c16, c32 = tap_channels(backbone_name)
    if config.final_map:
        from ml.backbones import feature_channels

        c32 += feature_channels(backbone_name)
    t8 = keras.Input((None, None, c8), name="tap8")
    t16 = keras.Input((None, None, c16), name="tap16")
    t32 = keras.Input((None, None, c32), name="tap32")
    w = config.width

    def lateral(x, name):
        return layers.Conv2D(w, 1, use_bias=False, name=name)(x)

    if config.context:
        branches = [lateral(t32, "aspp1")]
        for rate in (2, 4):
            atrous = layers.SeparableConv2D(
                w, 3, padding="same", dilation_rate=rate, use_bias=False, name=f"aspp{rate}"
            )
            branches.append(atrous(t32))
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(t32)
        pooled = layers.Conv2D(w, 1, use_bias=False, name="aspp_pool_conv")(pooled)
        branches.append(layers.Lambda(_broadcast_like, name="aspp_broadcast")([pooled, t32]))
        x = layers.Concatenate(name="aspp_concat")(branches)
        x = layers.Conv2D(w, 1, use_bias=False, name="aspp_project")(x)
        x = layers.ReLU(name="aspp_relu")(layers.BatchNormalization(name="aspp_bn")(x))
    else:
        x = lateral(t32, "lat32")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="up16")(x)
    x = _separable(layers.Add(name="merge16")([x, lateral(t16, "lat16")]), w, "fuse16")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="up8")(x)
    x = _separable(layers.Add(name="merge8")([x, lateral(t8, "lat8")]), w, "fuse8")
    x = _separable(x, w, "refine8")
    if config.dropout:
        x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Conv2D(config.classes, 1, name="classify")(x)
    logits = layers.UpSampling2D(2, interpolation="bilinear", name="up4", dtype="float32")(x)
    return keras.Model([t8, t16, t32], logits, name="garment_parser")
