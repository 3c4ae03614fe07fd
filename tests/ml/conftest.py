import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@pytest.fixture(scope="session")
def weights_cache(tmp_path_factory):
    """Converted ImageNet weights, shared by the tests of one session."""
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
