"""The model (ML_), as the workers use the pure ml package: artifacts, backbone, batches, training
and promotion. ml itself reads no settings; workers/ passes these in."""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config import env
from config.settings.base import VAR_DIR

# Model versions' artifacts, and downloaded backbone weights.
ML_ARTIFACTS_DIR = Path(env.get("ML_ARTIFACTS_DIR", str(VAR_DIR / "models")))
ML_CACHE_DIR = Path(env.get("ML_CACHE_DIR", str(VAR_DIR / "ml-cache")))
# The first model version of a fresh install: "shipped", the trained model in the repository
# (ml/shipped_models/, its figures in docs/ml.md), or "pretrained", the off-the-shelf ImageNet backbone.
ML_BOOTSTRAP_MODEL = env.get("ML_BOOTSTRAP_MODEL", "shipped")
if ML_BOOTSTRAP_MODEL not in ("shipped", "pretrained"):
    raise ImproperlyConfigured(f"ML_BOOTSTRAP_MODEL={ML_BOOTSTRAP_MODEL!r}: use 'shipped' or 'pretrained'")
# Backbone of the off-the-shelf model (ML_BOOTSTRAP_MODEL=pretrained).
ML_BACKBONE = env.get("ML_BACKBONE", "efficientnet_lite2")
# Images per model call.
ML_EMBED_BATCH_SIZE = env.get_int("ML_EMBED_BATCH_SIZE", 16)
# How the workers run a loaded version's forward passes on a CPU: "onnx" (ONNX Runtime over Keras's own
# ONNX export, written once per artifact under ML_CACHE_DIR/onnx; about 1.2x the images per second of
# "keras" end to end, docs/ml.md "Speed") or "keras". With a GPU the workers always use Keras.
ML_RUNTIME = env.get("ML_RUNTIME", "onnx")
if ML_RUNTIME not in ("onnx", "keras"):
    raise ImproperlyConfigured(f"ML_RUNTIME={ML_RUNTIME!r}: use 'onnx' or 'keras'")
# The nightly retrain check trains only after this many new posts.
ML_RETRAIN_MIN_NEW_POSTS = env.get_int("ML_RETRAIN_MIN_NEW_POSTS", 50)
# Share of posts held out for evaluation (chosen by hashing the post id, so the split is stable).
ML_HELDOUT_SHARE = env.get_float("ML_HELDOUT_SHARE", 0.2)
# Promote a trained version only if it beats the active one on this held-out metric by more than the gain.
ML_PROMOTION_METRIC = env.get("ML_PROMOTION_METRIC", "s2i_map21_seed")
ML_PROMOTION_MIN_GAIN = env.get_float("ML_PROMOTION_MIN_GAIN", 0.0)
# Where a retrain starts: "active", the active version's weights when it is a trained one (the shipped
# model is), or "imagenet", from the ImageNet backbone with a new head.
ML_TRAIN_FROM = env.get("ML_TRAIN_FROM", "active")
if ML_TRAIN_FROM not in ("active", "imagenet"):
    raise ImproperlyConfigured(f"ML_TRAIN_FROM={ML_TRAIN_FROM!r}: use 'active' or 'imagenet'")
# Training epochs (0: the ml trainer's default) and item input size (0: the backbone's default).
ML_TRAIN_EPOCHS = env.get_int("ML_TRAIN_EPOCHS", 0)
ML_TRAIN_IMAGE_SIZE = env.get_int("ML_TRAIN_IMAGE_SIZE", 0)
