"""Garment groups, and garments (instances) out of a per-pixel parse: pure NumPy/SciPy.

The parser (:mod:`ml.parser`) labels each pixel with one of :data:`GROUPS` (index 0 is
background: CCP's ``null``, ``skin`` and ``hair``). :func:`garments_from_parse` turns that
label map into garments the way the CCP-Posts protocol turns a label into an item: all of a
group's pixels in the photo are one garment (so the two shoes of a pair are one), after
dropping specks (connected parts below ``min_area`` of the photo) and fragments (parts
smaller than ``keep_fraction`` of the group's largest part), at most ``max_garments``.

A shop's categories map to these groups (``CCP_LABEL_GROUPS`` is CCP's mapping; see
docs/ml.md "Garment groups").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = "background"

# Garment groups, in label-id order after background (0). CCP label names per group.
GROUP_LABELS: dict[str, tuple[str, ...]] = {
    "tops": ("blouse", "bodysuit", "shirt", "t-shirt", "top", "vest", "bra", "intimate", "swimwear"),
    "knitwear": ("sweater", "jumper", "cardigan", "hoodie", "sweatshirt"),
    "outerwear": ("coat", "jacket", "blazer", "cape", "suit"),
    "dress": ("dress", "romper"),
    "skirt": ("skirt",),
    "trousers": ("pants", "leggings"),
    "jeans": ("jeans",),
    "shorts": ("shorts", "panties"),
    "legwear": ("stockings", "tights", "socks"),
    "shoes": ("shoes", "heels", "pumps", "flats", "sandals", "sneakers", "loafers", "clogs", "wedges"),
    "boots": ("boots",),
    "bag": ("bag", "purse", "wallet"),
    "hat": ("hat",),
    "scarf": ("scarf", "tie"),
    "belt": ("belt",),
    "accessories": (
        "accessories",
        "bracelet",
        "earrings",
        "glasses",
        "sunglasses",
        "gloves",
        "necklace",
        "ring",
        "watch",
    ),
}
GROUPS: tuple[str, ...] = (BACKGROUND, *GROUP_LABELS)
BACKGROUND_LABELS = frozenset({"null", "skin", "hair"})
CCP_LABEL_GROUPS: dict[str, str] = {label: group for group, labels in GROUP_LABELS.items() for label in labels}


def group_lookup(label_names: list[str]) -> np.ndarray:
    """(labels,) uint8: CCP label id -> group id (0 for null/skin/hair and unknown names)."""
    return np.array([GROUPS.index(CCP_LABEL_GROUPS.get(name, BACKGROUND)) for name in label_names], dtype=np.uint8)


def group_map(label_map: np.ndarray, label_names: list[str]) -> np.ndarray:
    """A CCP label map (h, w) -> a group map (h, w) uint8."""
    return group_lookup(label_names)[np.asarray(label_map)]


@dataclass(frozen=True)
class Garment:
    """One garment of a photo. ``box`` = (left, top, right, bottom) in the photo's pixels,
    right/bottom exclusive; ``mask`` (bottom - top, right - left) bool, the garment's pixels
    within its box; ``confidence`` the mean parser probability over them; ``area`` its share
    of the photo's pixels."""

    group: str
    box: tuple[int, int, int, int]
    mask: np.ndarray
    confidence: float
    area: float

    @property
    def group_id(self) -> int:
        return GROUPS.index(self.group)

    def full_mask(self, height: int, width: int) -> np.ndarray:
        out = np.zeros((height, width), dtype=bool)
        left, top, right, bottom = self.box
        out[top:bottom, left:right] = self.mask
        return out


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def garments_from_parse(
    labels: np.ndarray,
    confidence: np.ndarray | None = None,
    *,
    min_area: float = 0.002,
    keep_fraction: float = 0.2,
    max_garments: int = 11,
) -> list[Garment]:
    """Garments of one photo from its group map ``labels`` (h, w) and per-pixel ``confidence``.

    Per group: connected parts (8-connectivity) below ``min_area`` (a share of the photo) are
    specks and dropped, as are parts below ``keep_fraction`` of the group's largest part; the
    rest are one garment. Largest garments first, at most ``max_garments``.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (h, w), got shape {labels.shape}")
    if confidence is None:
        confidence = np.ones(labels.shape, dtype=np.float32)
    if confidence.shape != labels.shape:
        raise ValueError("confidence must have the labels' shape")
    if max_garments < 0:
        raise ValueError("max_garments must be >= 0")
    total = labels.size
    structure = np.ones((3, 3), dtype=bool)
    garments = []
    for group_id in np.unique(labels):
        if group_id == 0 or group_id >= len(GROUPS):
            continue
        parts, count = ndimage.label(labels == group_id, structure=structure)
        sizes = np.bincount(parts.ravel(), minlength=count + 1)[1:]
        keep = (sizes >= min_area * total) & (sizes >= keep_fraction * sizes.max())
        if not keep.any():
            continue
        mask = np.isin(parts, np.flatnonzero(keep) + 1)
        left, top, right, bottom = _box(mask)
        garments.append(
            Garment(
                group=GROUPS[int(group_id)],
                box=(left, top, right, bottom),
                mask=mask[top:bottom, left:right],
                confidence=float(confidence[mask].mean()),
                area=float(mask.sum() / total),
            )
        )
    garments.sort(key=lambda g: (-g.area, g.group_id))
    return garments[:max_garments]


def crop_on_white(photo: np.ndarray, garment: Garment) -> np.ndarray:
    """The garment's box cut from ``photo`` (h, w, 3) uint8, white outside its mask (as CCP items are)."""
    left, top, right, bottom = garment.box
    crop = np.array(photo[top:bottom, left:right], dtype=np.uint8, copy=True)
    crop[~garment.mask] = 255
    return crop


def garment_outline(
    garment: Garment, photo_hw: tuple[int, int], *, tolerance: float = 0.004, min_part: float = 0.05
) -> list[list[list[float]]]:
    """The garment's outline as polygons in fractions of the photo (x of its width, y of its height).

    One polygon per boundary of its mask (a pair of shoes gives two; a hole gives one more, to be
    filled even-odd), each simplified to within ``tolerance`` of the photo's longer side
    (Douglas-Peucker); boundaries enclosing less than ``min_part`` of the mask's largest are dropped.
    Points are rounded to 4 decimals: a few hundred bytes a garment.
    """
    from skimage import measure

    height, width = photo_hw
    if height < 1 or width < 1:
        raise ValueError("photo_hw must be positive")
    left, top, _, _ = garment.box
    padded = np.pad(np.asarray(garment.mask, dtype=np.uint8), 1)  # closes boundaries at the box's edge
    tol_px = max(0.5, tolerance * max(height, width))
    polygons, areas = [], []
    for contour in measure.find_contours(padded, 0.5):  # (n, 2) rows, cols; closed for a padded mask
        simple = measure.approximate_polygon(contour, tolerance=tol_px)
        if len(simple) < 4:  # a closed polygon repeats its first point: 3 corners at least
            continue
        rows, cols = simple[:, 0], simple[:, 1]
        areas.append(0.5 * abs(np.dot(cols, np.roll(rows, 1)) - np.dot(rows, np.roll(cols, 1))))
        # pixel (r, c) of the padded mask covers [c - 1, c) of the box: its centre lies at left + c - 0.5
        xs = np.clip((left + cols - 0.5) / width, 0.0, 1.0)
        ys = np.clip((top + rows - 0.5) / height, 0.0, 1.0)
        polygons.append(np.round(np.stack([xs, ys], axis=1)[:-1], 4).tolist())
    if not polygons:
        return []
    largest = max(areas)
    return [poly for poly, area in zip(polygons, areas, strict=True) if area >= min_part * largest]


def garment_record(garment: Garment, photo_hw: tuple[int, int]) -> dict:
    """What is stored and sent of a garment: group, box and outline in fractions of the photo, confidence, area."""
    height, width = photo_hw
    left, top, right, bottom = garment.box
    return {
        "group": garment.group,
        "box": [round(left / width, 4), round(top / height, 4), round(right / width, 4), round(bottom / height, 4)],
        "outline": garment_outline(garment, photo_hw),
        "confidence": round(float(garment.confidence), 4),
        "area": round(float(garment.area), 5),
    }


# -- measuring a parser --------------------------------------------------------------------------
def confusion(pred: np.ndarray, true: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts, rows = true class, columns = predicted."""
    pred, true = np.asarray(pred).ravel().astype(np.int64), np.asarray(true).ravel().astype(np.int64)
    if pred.shape != true.shape:
        raise ValueError("pred and true must have the same size")
    return np.bincount(true * classes + pred, minlength=classes * classes).reshape(classes, classes)


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix; NaN for a class absent from both."""
    matrix = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def mean_iou(matrix: np.ndarray, *, skip_background: bool = True) -> float:
    """Mean IoU over the classes present (garment groups only by default)."""
    ious = iou_per_class(matrix)
    if skip_background:
        ious = ious[1:]
    return float(np.nanmean(ious)) if np.isfinite(ious).any() else float("nan")


def pixel_accuracy(matrix: np.ndarray) -> float:
    matrix = np.asarray(matrix, dtype=np.float64)
    return float(np.trace(matrix) / matrix.sum()) if matrix.sum() else float("nan")


def box_iou(a, b) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), boxes (left, top, right, bottom)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


@dataclass(frozen=True)
class DetectionCounts:
    items: int  # protocol items
    found: int  # items matched by a predicted garment box at IoU >= threshold
    found_any_group: int  # the same, ignoring the group
    garments: int  # predicted garments
    matching: int  # predicted garments matching some item (same group) at IoU >= threshold

    @property
    def recall(self) -> float:
        return self.found / self.items if self.items else float("nan")

    @property
    def recall_any_group(self) -> float:
        return self.found_any_group / self.items if self.items else float("nan")

    @property
    def precision(self) -> float:
        return self.matching / self.garments if self.garments else float("nan")

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(*(x + y for x, y in zip(self.astuple(), other.astuple(), strict=True)))

    def astuple(self) -> tuple[int, ...]:
        return (self.items, self.found, self.found_any_group, self.garments, self.matching)


def detection_counts(pred_boxes, pred_groups, true_boxes, true_groups, *, threshold: float = 0.5) -> DetectionCounts:
    """Garment recall and precision of one photo: an item counts as found when a predicted
    garment of its group has box IoU >= ``threshold`` with it (``found_any_group``: any group)."""
    pred_groups, true_groups = np.asarray(pred_groups), np.asarray(true_groups)
    if len(pred_boxes) == 0 or len(true_boxes) == 0:
        return DetectionCounts(len(true_boxes), 0, 0, len(pred_boxes), 0)
    hit = box_iou(true_boxes, pred_boxes) >= threshold  # (items, garments)
    same = true_groups[:, None] == pred_groups[None, :]
    return DetectionCounts(
        items=len(true_boxes),
        found=int((hit & same).any(axis=1).sum()),
        found_any_group=int(hit.any(axis=1).sum()),
        garments=len(pred_boxes),
        matching=int((hit & same).any(axis=0).sum()),
    )
