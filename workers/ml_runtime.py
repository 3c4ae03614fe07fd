"""The bridge between ORM rows and the ``ml`` package, inside a worker process.

- :func:`ml_module` imports a submodule of the ml package named by ``settings.WORKERS_ML_PACKAGE``
  ("ml"; the test suite swaps in a small fake with the same contract).
- :func:`embedder_for` loads a version's artifact once per process (cache keyed by version id and
  checksum), after checking the artifact exists, matches its recorded checksum and verifies. A
  corrupt or missing artifact raises :class:`ArtifactUnavailable` and marks that version failed
  (never the active one, which keeps serving while staff look at the error).
- On a machine where TensorFlow sees a GPU, memory growth and mixed precision are switched on
  before the first model is built.

Nothing here is imported by the web process.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import threading
from collections import OrderedDict
from importlib import import_module
from pathlib import Path
from types import ModuleType

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from recommender.models import ModelVersion
from recommender.versions import version_mark_failed

logger = logging.getLogger(__name__)

_CACHE_SIZE = 3  # the active version, one being re-indexed, one being evaluated
_cache: OrderedDict[tuple[int, str], object] = OrderedDict()
_lock = threading.Lock()
_accelerator_configured = ""  # what configure_accelerator found, once it has run


class ArtifactUnavailable(RuntimeError):
    """A version's artifact is missing, corrupt or does not match its record."""

    def __init__(self, message: str, *, version_id: int | None = None, reason: str = ""):
        # One positional argument, so Celery can rebuild the exception on the caller's side.
        super().__init__(message)
        self.version_id = version_id
        self.reason = reason or message

    @classmethod
    def of(cls, version: ModelVersion, reason: str) -> ArtifactUnavailable:
        return cls(f"model version {version.name} (id {version.pk}): {reason}", version_id=version.pk, reason=reason)


class BadImage(ValueError):
    """An image that cannot be decoded; the message is safe to show to the user."""


def ml_module(name: str) -> ModuleType:
    """``<WORKERS_ML_PACKAGE>.<name>``, e.g. ``ml.artifact``."""
    return import_module(f"{settings.WORKERS_ML_PACKAGE}.{name}")


def configure_accelerator() -> str:
    """Once per process: with a GPU visible to TensorFlow, memory growth on and mixed precision.

    Only for the real ml package (TensorFlow). Returns a short description for the logs.
    """
    global _accelerator_configured
    if settings.WORKERS_ML_PACKAGE != "ml":
        return "unchanged"
    if _accelerator_configured:
        return _accelerator_configured
    _accelerator_configured = _accelerator_configure()
    return _accelerator_configured


def _accelerator_configure() -> str:
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        logger.info("TensorFlow sees no GPU; embedding on CPU")
        return "cpu"
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised
            pass
    keras.mixed_precision.set_global_policy("mixed_float16")
    logger.info("TensorFlow sees %d GPU(s); mixed precision on", len(gpus))
    return f"gpu x{len(gpus)}"


def artifact_dir(version: ModelVersion) -> Path:
    """Absolute artifact folder (``artifact_path`` is stored relative to ML_ARTIFACTS_DIR when inside it)."""
    path = Path(version.artifact_path)
    return path if path.is_absolute() else Path(settings.ML_ARTIFACTS_DIR) / path


def artifact_path_for_storage(path: Path) -> str:
    root = Path(settings.ML_ARTIFACTS_DIR).resolve()
    path = Path(path).resolve()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_embedder(version: ModelVersion):
    """The version's Embedder, loaded at most once per process; raises :class:`ArtifactUnavailable`."""
    key = (version.pk, version.artifact_checksum)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        if not version.artifact_path:
            raise ArtifactUnavailable.of(version, "no artifact recorded")
        artifact = ml_module("artifact")
        path = artifact_dir(version)
        if not path.exists():
            raise ArtifactUnavailable.of(version, f"artifact missing at {path}")
        try:
            actual = artifact.checksum(path)
            artifact.verify(path)
        except artifact.ArtifactError as exc:
            raise ArtifactUnavailable.of(version, f"artifact does not verify: {exc}") from exc
        if version.artifact_checksum and actual != version.artifact_checksum:
            raise ArtifactUnavailable.of(
                version,
                f"artifact checksum {actual[:12]}... differs from the recorded {version.artifact_checksum[:12]}...",
            )
        device = configure_accelerator()
        try:
            embedder = artifact.load(path)
        except artifact.ArtifactError as exc:
            raise ArtifactUnavailable.of(version, f"artifact does not load: {exc}") from exc
        if settings.ML_RUNTIME == "onnx" and device == "cpu" and hasattr(embedder, "use_onnx"):
            # exports per artifact (they copy its weights), written by the first process that needs one
            embedder.use_onnx(Path(settings.ML_CACHE_DIR) / "onnx" / actual[:16])
        if version.dim and int(embedder.dim) != int(version.dim):
            raise ArtifactUnavailable.of(
                version, f"artifact dim {embedder.dim} differs from the recorded {version.dim}"
            )
        _cache[key] = embedder
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        logger.info(
            "loaded model version %s (id %s, dim %s, runtime %s)",
            version.name,
            version.pk,
            embedder.dim,
            getattr(embedder, "runtime", "keras"),
        )
        return embedder


def embedder_for(version: ModelVersion):
    """Like :func:`load_embedder`, and a version whose artifact is unusable is marked failed (unless active)."""
    try:
        return load_embedder(version)
    except ArtifactUnavailable as exc:
        failed = version_mark_failed(version=version, reason=str(exc))
        logger.error("%s%s", exc, "" if failed else " (the active version: kept active, see its error)")
        raise


def cache_clear() -> None:
    with _lock:
        _cache.clear()


def open_image(path_or_file) -> Image.Image:
    """Decode an image fully into RGB; raises :class:`BadImage` with a readable reason."""
    try:
        with Image.open(path_or_file) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError as exc:
        raise BadImage(f"image file missing: {exc.filename}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise BadImage(f"unreadable image: {exc}") from exc


def decode_b64_image(image_b64: str, *, max_bytes: int) -> Image.Image:
    """A query upload (base64 of the file bytes) as an RGB image; raises :class:`BadImage`."""
    try:
        raw = base64.b64decode(image_b64, validate=False)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadImage("the upload is not valid base64") from exc
    if not raw:
        raise BadImage("the upload is empty")
    if len(raw) > max_bytes:
        raise BadImage(f"the upload is larger than {max_bytes} bytes")
    return open_image(io.BytesIO(raw))
