import json

import pytest

from ml.config import ModelConfig


def test_round_trip_through_json():
    config = ModelConfig(backbone="efficientnet_lite0", pooling=["gem", "mac"], dim=64, snapshot_size=(128, 96))
    data = json.loads(json.dumps(config.to_dict()))
    assert ModelConfig.from_dict(data) == config
    assert config.descriptor_dim == 128
    assert config.max_regions == 32


def test_projection_free_dim_uses_backbone_channels():
    assert ModelConfig(backbone="resnet50", pooling=["spoc"], dim=None).descriptor_dim == 2048


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backbone": "vgg"},
        {"pooling": []},
        {"pooling": ["avg"]},
        {"dim": 0},
        {"loss": "softmax"},
        {"regions": "nope"},
        {"snapshot_size": (16, 16)},
    ],
)
def test_invalid_configs_raise(kwargs):
    with pytest.raises(ValueError):
        ModelConfig(**kwargs)


def test_unknown_keys_raise():
    with pytest.raises(ValueError, match="unknown config keys"):
        ModelConfig.from_dict({"backbone": "resnet50", "colour": "red"})
