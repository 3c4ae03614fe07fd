"""The real ml package in a real worker: the smallest pretrained backbone, loaded once per process."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from recommender.wire import vectors_decode
from tests.workers.conftest import color_image

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REAL_ENV = {"WORKERS_ML_PACKAGE": "ml", "WORKERS_BOOTSTRAP_ON_START": "0"}


@pytest.fixture(scope="module")
def lite0_artifact(tmp_path_factory) -> Path:
    """An off-the-shelf efficientnet_lite0 artifact (ImageNet weights converted offline, cached)."""
    from ml.artifact import create_pretrained

    out = tmp_path_factory.mktemp("lite0") / "artifact"
    return create_pretrained(out, backbone="efficientnet_lite0", cache_dir=settings.ML_CACHE_DIR)


def test_a_worker_loads_the_pretrained_model_once_and_answers_queries(worker_factory, broker_clean, lite0_artifact):
    from ml.artifact import checksum, load
    from recommender.versions import version_activate, version_artifact_set, version_create, version_mark_ready
    from workers.tasks import embed_query

    target = Path(settings.ML_ARTIFACTS_DIR) / "real-lite0"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(lite0_artifact, target)
    embedder = load(target)
    version = version_create(name="real-lite0", backbone="efficientnet_lite0", is_pretrained_only=True)
    version_artifact_set(
        version=version,
        artifact_path="real-lite0",
        checksum=checksum(target),
        dim=embedder.dim,
        max_regions=embedder.max_regions,
    )
    version_mark_ready(version=version)
    version_activate(version=version, require_complete=False)
    worker = worker_factory(
        queues="queries", name="real", extra_env={**REAL_ENV, "ML_CACHE_DIR": str(settings.ML_CACHE_DIR)}
    )
    upload = base64.b64encode(color_image((180, 40, 40), size=(120, 180), fmt="JPEG")).decode()

    item_version, item = vectors_decode(embed_query.delay(upload, "item").get(timeout=180))
    snapshot_version, snapshot = vectors_decode(embed_query.delay(upload, "snapshot").get(timeout=180))

    assert item_version == snapshot_version == version.pk
    assert item.shape == (1, embedder.dim)
    assert 1 <= len(snapshot) <= embedder.max_regions and snapshot.shape[1] == embedder.dim
    assert np.isclose(np.linalg.norm(item[0]), 1.0, atol=1e-3)
    log = worker.log_path.read_text(errors="replace")
    assert log.count(f"loaded model version real-lite0 (id {version.pk}") == 1  # once per process
    # on this CPU the worker runs the passes under ONNX Runtime (ML_RUNTIME): the Keras model's answer
    assert f"(id {version.pk}, dim {embedder.dim}, runtime onnx)" in log
    import io

    from PIL import Image

    keras_item = embedder.embed_items([Image.open(io.BytesIO(base64.b64decode(upload))).convert("RGB")])
    assert float(keras_item[0] @ item[0]) >= 1 - 1e-4
