"""Region schemes: fixed windows over a snapshot's feature map, each pooled by the same head.

A garment is a small part of a street snapshot, so an item is scored against the
best-matching window of the snapshot (:mod:`ml.scoring`). Windows are fractions
(y0, x0, y1, x1) of the feature map, snapped outwards to whole cells; region 0 is
always the whole map (the global descriptor). At most 32 regions per scheme.
"""

from __future__ import annotations

import numpy as np

Box = tuple[float, float, float, float]


def _bands(height: float, width: float, y_step: float, x_starts) -> list[Box]:
    boxes = []
    y0 = 0.0
    while y0 + height <= 1.0 + 1e-6:
        for x0 in x_starts:
            boxes.append((round(y0, 4), round(x0, 4), round(min(y0 + height, 1.0), 4), round(min(x0 + width, 1.0), 4)))
        y0 += y_step
    return boxes


def _multiscale32() -> list[Box]:
    boxes: list[Box] = [(0.0, 0.0, 1.0, 1.0)]
    boxes += _bands(2 / 3, 1.0, 1 / 3, [0.0])  # upper / lower two thirds: 2
    boxes += _bands(1 / 2, 1.0, 1 / 4, [0.0])  # halves: 3
    boxes += _bands(1 / 3, 1.0, 1 / 6, [0.0])  # thirds: 5 (tops, bottoms, dresses)
    boxes += _bands(1 / 3, 2 / 3, 1 / 6, [0.0, 1 / 3])  # off-centre thirds: 10 (bags, coats)
    boxes += _bands(1 / 5, 1.0, 1 / 5, [0.0])  # fifths: 5 (hats, belts, shoes)
    boxes += [(0.25, 0.0, 0.5, 0.5), (0.25, 0.5, 0.5, 1.0), (0.5, 0.0, 0.75, 0.5), (0.5, 0.5, 0.75, 1.0)]
    boxes += [(5 / 6, 0.0, 1.0, 0.5), (5 / 6, 0.5, 1.0, 1.0)]  # one shoe each
    return boxes


# Smaller schemes for serving with fewer index probes per query: subsets of multiscale32
# (indices into it), so a snapshot embedded with multiscale32 can be scored with any of them by
# selecting rows. Chosen before any of them was measured.
MULTISCALE32_SUBSETS: dict[str, list[int]] = {
    # whole, upper/lower two thirds, the three halves, the five thirds, the five fifths
    "multiscale16": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 22, 23, 24, 25],
    # whole, upper/lower two thirds, upper/lower half, top/middle/bottom third, top/bottom fifth
    "multiscale10": [0, 1, 2, 3, 5, 6, 8, 10, 21, 25],
    # whole, upper/lower two thirds, top/middle/bottom third
    "multiscale6": [0, 1, 2, 6, 8, 10],
}

REGION_SCHEMES: dict[str, list[Box]] = {
    "global": [(0.0, 0.0, 1.0, 1.0)],
    "multiscale32": _multiscale32(),
}
REGION_SCHEMES.update(
    {name: [REGION_SCHEMES["multiscale32"][i] for i in rows] for name, rows in MULTISCALE32_SUBSETS.items()}
)
for _name, _boxes in REGION_SCHEMES.items():
    assert len(_boxes) <= 32 and _boxes[0] == (0.0, 0.0, 1.0, 1.0), _name
    assert len(set(_boxes)) == len(_boxes), _name


def subset_rows(scheme: str, of: str) -> list[int]:
    """Indices of ``scheme``'s regions within scheme ``of`` (in ``scheme``'s order).

    Descriptors embedded with ``of`` can then be scored as ``scheme`` by selecting these rows.
    Raises ``ValueError`` when a region of ``scheme`` is not in ``of``.
    """
    for name in (scheme, of):
        if name not in REGION_SCHEMES:
            raise ValueError(f"unknown region scheme {name!r}; choose one of {sorted(REGION_SCHEMES)}")
    position = {box: i for i, box in enumerate(REGION_SCHEMES[of])}
    missing = [box for box in REGION_SCHEMES[scheme] if box not in position]
    if missing:
        raise ValueError(f"region scheme {scheme!r} is not a subset of {of!r} (e.g. {missing[0]} is missing)")
    return [position[box] for box in REGION_SCHEMES[scheme]]


def region_masks(scheme: str | list[Box], height: int, width: int) -> np.ndarray:
    """(regions, height * width) float32 averaging weights: row r is 1/|cells| on region r's cells."""
    boxes = REGION_SCHEMES[scheme] if isinstance(scheme, str) else scheme
    masks = np.zeros((len(boxes), height, width), dtype=np.float32)
    for r, (y0, x0, y1, x1) in enumerate(boxes):
        r0, r1 = int(np.floor(y0 * height + 1e-6)), max(int(np.ceil(y1 * height - 1e-6)), 1)
        c0, c1 = int(np.floor(x0 * width + 1e-6)), max(int(np.ceil(x1 * width - 1e-6)), 1)
        r0, c0 = min(r0, r1 - 1), min(c0, c1 - 1)
        masks[r, r0:r1, c0:c1] = 1.0
    masks = masks.reshape(len(boxes), height * width)
    return masks / masks.sum(axis=1, keepdims=True)
