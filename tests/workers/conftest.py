"""Worker fixtures: coloured test posts, model versions on the fake ml package, broker queue cleanup.

Worker tests run the real pipeline (tasks, services, PostgreSQL, Redis, worker processes) with
``tests.workers.fake_ml`` standing in for the TensorFlow model, so each test takes seconds.
One test (test_real_model.py) loads the real ml package's smallest backbone.
"""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from PIL import Image

from workers.registry import QUEUES

FAKE_ML = "tests.workers.fake_ml"
WORKER_ENV = {"WORKERS_ML_PACKAGE": FAKE_ML, "WORKERS_BOOTSTRAP_ON_START": "0", "ML_EMBED_BATCH_SIZE": "4"}


@pytest.fixture(autouse=True)
def fake_ml(settings):
    """In-process code uses the fake ml package too; the model cache starts empty."""
    from workers import ml_runtime

    settings.WORKERS_ML_PACKAGE = FAKE_ML
    settings.ML_EMBED_BATCH_SIZE = 4
    ml_runtime.cache_clear()
    yield
    ml_runtime.cache_clear()


@pytest.fixture(autouse=True)
def _remove_new_artifacts():
    """Artifacts written during a test (trained or bootstrapped versions) are removed afterwards."""
    root = Path(django_settings.ML_ARTIFACTS_DIR)
    before = set(root.iterdir()) if root.exists() else set()
    yield
    for path in (set(root.iterdir()) if root.exists() else set()) - before:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sent_tasks(monkeypatch):
    """Record the tasks sent by name (``[(name, options)]``) instead of publishing them."""
    from workers.celery import app

    sent = []

    class Result:
        id = "recorded"

    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)) or Result())
    return sent


@pytest.fixture
def broker_clean(celery_app_purged):
    """Every queue of the test broker emptied before and after (``control.purge`` only knows "default")."""

    def clear() -> None:
        with celery_app_purged.connection_for_write() as conn:
            channel = conn.default_channel
            # each queue is one Redis list per priority step (workers.registry.PRIORITY_STEPS)
            lists = [channel._q_for_pri(queue, step) for queue in QUEUES for step in channel.priority_steps]
            channel.client.delete(*lists, "unacked", "unacked_index")

    clear()
    yield celery_app_purged
    clear()


def color_image(rgb: tuple[int, int, int], *, size=(48, 64), seed: int = 0, fmt: str = "PNG") -> bytes:
    """A solid colour with a small seeded mark (so every picture's hash differs)."""
    image = Image.new("RGB", size, rgb)
    for n in range(3):
        image.putpixel(((seed * 7 + n) % size[0], (seed * 3 + n) % size[1]), ((seed * 37) % 256, n * 40, 200))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


POST_COLOURS = [
    (200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200),
    (120, 60, 10), (10, 120, 60), (60, 10, 120), (240, 240, 240), (20, 20, 20), (128, 128, 128),
]  # fmt: skip


@pytest.fixture
def make_colour_post():
    """``make_colour_post(n, n_items=2)``: a published snapshot and its items, all in post colour ``n``."""
    from catalog.services.posts import post_create
    from catalog.validators import validate_image_upload

    counter = iter(range(10_000))

    def make(index: int, *, n_items: int = 2, items=()):
        rgb = POST_COLOURS[index % len(POST_COLOURS)]
        snapshot_image = validate_image_upload(color_image(rgb, seed=next(counter), size=(60, 90)), name="s.png")
        new_items = list(items)
        from catalog.services.items import item_create

        for _ in range(n_items):
            clean = validate_image_upload(color_image(rgb, seed=next(counter)), name="i.png")
            new_items.append(item_create(image=clean, name=f"item {index}", enqueue=False))
        return post_create(image=snapshot_image, title=f"post {index}", items=new_items, enqueue=False)

    return make


@pytest.fixture
def make_version():
    """``make_version(mode="hash"|"color", status=..., activate=False)``: a version with a real fake artifact."""
    from recommender.versions import version_activate, version_artifact_set, version_create, version_mark_ready
    from tests.workers.fake_ml import artifact
    from tests.workers.fake_ml.config import ModelConfig
    from workers.ml_runtime import artifact_path_for_storage

    created: list[Path] = []

    def make(*, mode: str = "hash", activate: bool = False, pretrained: bool = False):
        name = f"test-{mode}-{uuid.uuid4().hex[:8]}"
        out = Path(django_settings.ML_ARTIFACTS_DIR) / name
        created.append(out)
        artifact.save(ModelConfig(mode=mode), out)
        version = version_create(name=name, backbone="fake", is_pretrained_only=pretrained)
        version_artifact_set(
            version=version,
            artifact_path=artifact_path_for_storage(out),
            checksum=artifact.checksum(out),
            dim=8,
            max_regions=3,
        )
        version_mark_ready(version=version)
        if activate:
            version_activate(version=version, require_complete=False)
        version.refresh_from_db()
        return version

    yield make
    for path in created:
        shutil.rmtree(path, ignore_errors=True)


def vectors_of(version, kind: str) -> dict[int, list]:
    """{image id: [vector, ...] by region} of one version."""
    from catalog.models import ItemEmbedding, SnapshotEmbedding

    if kind == "item":
        rows = ItemEmbedding.objects.filter(model_version=version).order_by("item_id")
        return {row.item_id: [list(row.vector)] for row in rows}
    out: dict[int, list] = {}
    for row in SnapshotEmbedding.objects.filter(model_version=version).order_by("snapshot_id", "region"):
        out.setdefault(row.snapshot_id, []).append(list(row.vector))
    return out


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {message}")


def expected_vectors(version, image_path: str, kind: str) -> list[list[float]]:
    """What the fake model computes for this image (to check workers wrote exactly that)."""
    import numpy as np

    from tests.workers.fake_ml.artifact import load
    from workers.ml_runtime import artifact_dir

    embedder = load(artifact_dir(version))
    if kind == "item":
        return embedder.embed_items([image_path]).tolist()
    regions = embedder.embed_snapshots([image_path])[0]
    return [r.tolist() for r in regions if np.any(r != 0)]
