import numpy as np
import pytest
from PIL import Image
from skimage import data

from ml import backbones
from ml.backbones import efficientnet_lite

CAT_CLASSES = {281, 282, 283, 284, 285, 286, 287}  # tabby .. lynx: the ImageNet cats
ESPRESSO = 967


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite2"])
def test_efficientnet_lite_is_really_pretrained(name, weights_cache):
    model = efficientnet_lite.load_imagenet(name, weights_cache, include_top=True)
    size = efficientnet_lite.VARIANTS[name].resolution
    photos = [data.chelsea(), data.coffee()]
    batch = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BICUBIC)) for p in photos])
    logits = np.asarray(model.predict_on_batch(efficientnet_lite.preprocess(batch)))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert CAT_CLASSES & set(top5[0].tolist()), top5[0]
    assert ESPRESSO in top5[1], top5[1]
    # converted once, then loaded from the cache
    assert (weights_cache / f"{name}_imagenet.weights.h5").exists()


def test_feature_extractor_shapes(weights_cache):
    model = backbones.build_backbone("efficientnet_lite0", None)
    out = model.predict_on_batch(np.zeros((1, 96, 64, 3), np.float32))
    assert out.shape == (1, 3, 2, 1280)
    assert backbones.feature_channels("efficientnet_lite2") == 1280


def test_resnet50_random_init():
    model = backbones.build_backbone("resnet50", None)
    out = model.predict_on_batch(backbones.preprocess("resnet50", np.zeros((1, 64, 64, 3))))
    assert out.shape == (1, 2, 2, 2048)


def test_resnet50_offline_error_says_how_to_provide_weights(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(backbones.WeightsUnavailableError, match="local path"):
        backbones.build_backbone("resnet50", "imagenet")


def test_missing_local_weights_file(tmp_path):
    with pytest.raises(backbones.WeightsUnavailableError, match="does not exist"):
        backbones.build_backbone("resnet50", tmp_path / "nope.h5")


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        backbones.build_backbone("vgg16", None)


@pytest.mark.parametrize(
    ("name", "stages", "first_trainable", "channels"),
    [
        ("efficientnet_lite0", 1, "block15_expand_conv", 192),  # last MBConv stage (1 block) + top conv
        ("efficientnet_lite2", 1, "block20_expand_conv", 208),
        ("efficientnet_lite2", 2, "block15_expand_conv", 120),
        ("resnet50", 1, "conv5_block1_1_conv", 1024),  # conv5
    ],
)
def test_split_backbone_composes_to_the_backbone(name, stages, first_trainable, channels, rng):
    model = backbones.build_backbone(name, None)
    prefix, suffix = backbones.split_backbone(model, name, stages)
    x = backbones.preprocess(name, rng.integers(0, 255, (2, 64, 96, 3)).astype(np.float32))
    maps = prefix.predict_on_batch(x)
    assert maps.shape[-1] == channels
    np.testing.assert_allclose(np.asarray(suffix(maps, training=False)), model.predict_on_batch(x), atol=1e-5)
    suffix_layers = {layer.name for layer in suffix.layers}
    assert first_trainable in suffix_layers and "stem_conv" not in suffix_layers and "conv1_conv" not in suffix_layers
    # the suffix shares the backbone's variables: training it changes the backbone
    backbone_ids = {id(w) for w in model.weights}
    assert all(id(w) in backbone_ids for w in suffix.weights)


def test_split_backbone_rejects_bad_stage_counts():
    model = backbones.build_backbone("efficientnet_lite0", None)
    with pytest.raises(ValueError, match="stages"):
        backbones.split_backbone(model, "efficientnet_lite0", 0)
    with pytest.raises(ValueError, match="MBConv stages"):
        backbones.split_backbone(model, "efficientnet_lite0", 8)
