"""Lookbook's descriptor model: a pure Keras 3 library (no Django, no settings).

Arrays, paths and an explicit :class:`ml.config.ModelConfig` in; arrays and metric
dicts out. Heavy submodules (TensorFlow) load lazily, so ``import ml`` is cheap.
"""

import os

# Keras picks its backend at import time; this library is written and tested on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
