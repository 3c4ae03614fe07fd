"""How query descriptors travel from a worker to the web process: raw float32 bytes, not JSON numbers.

A 32-region snapshot query is 32 x 1024 floats. As JSON lists that cost about 90 ms to
encode in the worker and 55 ms to decode in the web process on this 2-core machine; as
base64 of little-endian float32 bytes it costs a few milliseconds both ways, and float32
is exactly what the model produced (no rounding through decimal text).
"""

from __future__ import annotations

import base64

import numpy as np

WIRE_DTYPE = "<f4"


MAX_GARMENTS = 32
MAX_OUTLINE_POINTS = 4000


def vectors_encode(vectors, *, model_version_id: int, garments: list[dict] | None = None) -> dict:
    """``{"model_version_id", "shape": [n, dim], "dtype", "vectors_b64"}`` for a 2-d array of descriptors,
    with ``"garments"`` (a snapshot's: ``ml.model.Looks.garment_records``) when given."""
    array = np.ascontiguousarray(np.asarray(vectors, dtype=WIRE_DTYPE))
    if array.ndim != 2:
        raise ValueError(f"vectors must be 2-d (n, dim), got shape {array.shape}")
    body = {
        "model_version_id": int(model_version_id),
        "shape": [int(array.shape[0]), int(array.shape[1])],
        "dtype": WIRE_DTYPE,
        "vectors_b64": base64.b64encode(array.tobytes()).decode("ascii"),
    }
    if garments is not None:
        body["garments"] = garments
    return body


def _fraction(value) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{number} is not a fraction of the photo")
    return number


def garments_decode(body: dict, *, rows: int) -> list[dict]:
    """The garments of a snapshot answer, checked: group, box (fractions, left < right, top < bottom),
    outline (polygons of fractions), confidence, and a region naming one of the ``rows`` vectors but the
    whole photo's; [] when the answer has none. ``ValueError`` for anything malformed."""
    raw = body.get("garments") or []
    try:
        if not isinstance(raw, list) or len(raw) > MAX_GARMENTS:
            raise ValueError("garments must be a list of at most 32")
        out, points = [], 0
        for garment in raw:
            box = [_fraction(v) for v in garment["box"]]
            if len(box) != 4 or box[0] >= box[2] or box[1] >= box[3]:
                raise ValueError(f"bad box {box!r}")
            region = int(garment["region"])
            if not 0 < region < rows:
                raise ValueError(f"region {region} names no garment row of {rows}")
            group = str(garment["group"])
            if not group or len(group) > 40:
                raise ValueError("bad group")
            outline = [[[_fraction(x), _fraction(y)] for x, y in polygon] for polygon in garment.get("outline", [])]
            points += sum(len(polygon) for polygon in outline)
            if points > MAX_OUTLINE_POINTS:
                raise ValueError("outline too long")
            confidence = float(garment.get("confidence", 0.0))
            out.append({"group": group, "box": box, "outline": outline, "confidence": confidence, "region": region})
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed garments: {exc}") from exc
    return out


def vectors_decode(body: dict) -> tuple[int, np.ndarray]:
    """``(model_version_id, float32 array (n, dim))``; ``ValueError`` for anything malformed."""
    try:
        version_id = int(body["model_version_id"])
        rows, dim = (int(x) for x in body["shape"])
        if body.get("dtype", WIRE_DTYPE) != WIRE_DTYPE:
            raise ValueError(f"unsupported dtype {body.get('dtype')!r}")
        raw = base64.b64decode(body["vectors_b64"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed query vectors: {exc}") from exc
    if rows < 1 or dim < 1 or len(raw) != rows * dim * 4:
        raise ValueError(f"malformed query vectors: {len(raw)} bytes for shape ({rows}, {dim})")
    array = np.frombuffer(raw, dtype=WIRE_DTYPE).reshape(rows, dim).astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("malformed query vectors: non-finite values")
    return version_id, array
