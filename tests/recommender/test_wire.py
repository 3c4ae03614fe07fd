"""The query worker's answer on the wire: vectors as float32 bytes, a snapshot's garments checked."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.wire import garments_decode, vectors_decode, vectors_encode


def _garment(**overrides):
    garment = {
        "group": "shoes",
        "box": [0.1, 0.7, 0.5, 0.95],
        "outline": [[[0.1, 0.7], [0.5, 0.7], [0.5, 0.95]]],
        "confidence": 0.8,
        "region": 2,
    }
    return {**garment, **overrides}


def test_vectors_and_garments_round_trip():
    vectors = np.eye(3, 4, dtype=np.float32)
    body = vectors_encode(vectors, model_version_id=7, garments=[_garment()])
    version, decoded = vectors_decode(body)
    assert version == 7 and np.array_equal(decoded, vectors)
    assert garments_decode(body, rows=3) == [
        {k: v for k, v in _garment().items() if k in ("group", "box", "outline", "confidence", "region")}
    ]
    assert garments_decode(vectors_encode(vectors, model_version_id=7), rows=3) == []


@pytest.mark.parametrize(
    "bad",
    [
        _garment(region=0),  # the whole photo is not a garment
        _garment(region=3),  # no such row
        _garment(box=[0.5, 0.7, 0.1, 0.95]),  # left > right
        _garment(box=[0.1, 0.7, 0.5, 1.5]),  # outside the photo
        _garment(box=[0.1, 0.7, 0.5]),
        _garment(box="0.1,0.7"),
        _garment(group=""),
        _garment(outline=[[[0.1, 2.0]]]),
        _garment(outline=[[[0.5] * 2] * 4001]),
        {"group": "shoes", "region": 1},
        "not a garment",
    ],
)
def test_a_malformed_garment_is_refused(bad):
    body = vectors_encode(np.eye(3, 4), model_version_id=1, garments=[bad])
    with pytest.raises(ValueError, match="malformed garments"):
        garments_decode(body, rows=3)
    with pytest.raises(ValueError, match="malformed garments"):
        garments_decode({**body, "garments": [_garment()] * 33}, rows=3)
