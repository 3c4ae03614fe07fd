"""A test-only Celery app module: the real app plus a stand-in for ``workers.embed_query``.

Imported by a real worker through tests.recommender.worker_settings (CELERY_IMPORTS); see the
``query_worker`` fixture. The task answers like the real one (the active version's id and
vectors of its dimension) with KNOWN vectors, so a test can compare the upload query's
results with the selectors' answer for the same vectors.
"""

from __future__ import annotations

import base64
import io

from celery import shared_task

FAKE_TASK_NAME = "tests.fake_embed_query"


def known_vectors(kind: str, dim: int, max_regions: int) -> list[list[float]]:
    """Region r of a snapshot query is the unit vector e_r; an item query is e_0."""
    count = 1 if kind == "item" else max(1, min(max_regions, dim))
    return [[1.0 if j == r else 0.0 for j in range(dim)] for r in range(count)]


@shared_task(name=FAKE_TASK_NAME)
def fake_embed_query(image_b64: str, kind: str) -> dict:
    from PIL import Image

    from recommender.models import ModelVersion
    from recommender.wire import vectors_encode

    Image.open(io.BytesIO(base64.b64decode(image_b64))).verify()  # it really is the uploaded picture
    version = ModelVersion.objects.active().get()
    return vectors_encode(known_vectors(kind, version.dim, version.max_regions), model_version_id=version.pk)
