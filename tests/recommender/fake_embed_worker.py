"""A test-only Celery app module: the real app plus a stand-in for ``workers.embed_query``.

Imported by a real worker through tests.recommender.worker_settings (CELERY_IMPORTS); see the
``query_worker`` fixture. The task answers like the real one (the active version's id and
vectors of its dimension) with KNOWN vectors, so a test can compare the upload query's
results with the selectors' answer for the same vectors. A snapshot query also answers KNOWN
garments (``known_garments``): a top on region 1 and, with a third row, trousers on region 2.
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


# region -> (group, box): a top over the upper half of the photo, trousers below it
KNOWN_GARMENTS = {
    1: ("tops", (0.25, 0.12, 0.75, 0.5)),
    2: ("trousers", (0.3, 0.5, 0.7, 0.92)),
}


def known_garments(kind: str, rows: int) -> list[dict]:
    """A snapshot query's garment records (``recommender.wire`` format) for the regions its ``rows`` have."""
    if kind != "snapshot":
        return []
    records = []
    for region, (group, (left, top, right, bottom)) in KNOWN_GARMENTS.items():
        if region < rows:
            middle = (left + right) / 2
            outline = [[[left, top], [right, top], [right, bottom], [middle, bottom], [left, bottom]]]
            area = (right - left) * (bottom - top)
            records.append(
                {
                    "group": group,
                    "box": [left, top, right, bottom],
                    "outline": outline,
                    "confidence": 0.9,
                    "area": area,
                    "region": region,
                }
            )
    return records


@shared_task(name=FAKE_TASK_NAME)
def fake_embed_query(image_b64: str, kind: str) -> dict:
    from PIL import Image

    from recommender.models import ModelVersion
    from recommender.wire import vectors_encode

    Image.open(io.BytesIO(base64.b64decode(image_b64))).verify()  # it really is the uploaded picture
    version = ModelVersion.objects.active().get()
    vectors = known_vectors(kind, version.dim, version.max_regions)
    return vectors_encode(vectors, model_version_id=version.pk, garments=known_garments(kind, len(vectors)))
