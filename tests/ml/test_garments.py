"""Garment groups, instances from a parse, and the parser's metrics against hand-made maps and NumPy loops."""

import numpy as np
import pytest

from ml import garments as G


def test_every_ccp_garment_label_has_one_group_and_background_is_null_skin_hair():
    names = ["null", "shoes", "skin", "t-shirt", "hair", "pants", "sneakers", "not-a-label"]
    lookup = G.group_lookup(names)
    assert [G.GROUPS[i] for i in lookup] == [
        "background",
        "shoes",
        "background",
        "tops",
        "background",
        "trousers",
        "shoes",
        "background",
    ]
    labels = np.array([[0, 1], [5, 6]])
    shoes, trousers = G.GROUPS.index("shoes"), G.GROUPS.index("trousers")
    assert G.group_map(labels, names).tolist() == [[0, shoes], [trousers, shoes]]
    flat = [label for labels in G.GROUP_LABELS.values() for label in labels]
    assert len(flat) == len(set(flat)), "a CCP label in two groups"
    assert not G.BACKGROUND_LABELS & set(flat)


def _label_map():
    """100 x 80: a top, trousers, two separate shoes, a bag speck and a small tops fragment."""
    labels = np.zeros((100, 80), dtype=np.uint8)
    tops, trousers, shoes, bag = (G.GROUPS.index(g) for g in ("tops", "trousers", "shoes", "bag"))
    labels[10:40, 20:60] = tops  # 1200 px
    labels[45:85, 25:55] = trousers  # 1200 px
    labels[90:96, 20:30] = shoes  # 60 px: one shoe
    labels[90:96, 50:62] = shoes  # 72 px: the other, far from the first
    labels[2:4, 2:4] = bag  # 4 px = 0.05 %: a speck
    labels[60:66, 70:76] = tops  # 36 px, 3 % of the main top: a fragment
    return labels


def test_the_two_shoes_of_a_pair_are_one_garment_and_specks_and_fragments_are_dropped():
    labels = _label_map()
    confidence = np.full(labels.shape, 0.5, dtype=np.float32)
    confidence[labels == G.GROUPS.index("trousers")] = 0.9
    found = G.garments_from_parse(labels, confidence, min_area=0.002, keep_fraction=0.2)
    by_group = {g.group: g for g in found}
    assert set(by_group) == {"tops", "trousers", "shoes"}
    shoes = by_group["shoes"]
    assert shoes.box == (20, 90, 62, 96)  # spans both shoes
    assert shoes.mask.shape == (6, 42) and shoes.mask.sum() == 132
    assert by_group["tops"].box == (20, 10, 60, 40)  # the fragment is not in it
    assert by_group["trousers"].confidence == pytest.approx(0.9)
    np.testing.assert_array_equal(by_group["trousers"].full_mask(100, 80), labels == G.GROUPS.index("trousers"))
    assert [g.group for g in found][:2] in (["tops", "trousers"], ["trousers", "tops"])  # largest first
    assert found[0].area == pytest.approx(0.15)


def test_cap_keeps_the_largest_and_a_lower_min_area_keeps_the_speck():
    labels = _label_map()
    capped = G.garments_from_parse(labels, max_garments=2)
    assert len(capped) == 2 and {g.group for g in capped} == {"tops", "trousers"}
    assert G.garments_from_parse(labels, max_garments=0) == []
    loose = G.garments_from_parse(labels, min_area=0.0, keep_fraction=0.0)
    assert "bag" in {g.group for g in loose}
    assert next(g for g in loose if g.group == "tops").box == (20, 10, 76, 66)  # fragment kept too
    assert G.garments_from_parse(np.zeros((10, 10), dtype=np.uint8)) == []


def test_crop_on_white_keeps_only_the_garment_pixels():
    labels = _label_map()
    photo = np.random.default_rng(0).integers(0, 200, (100, 80, 3), dtype=np.uint8)
    shoes = next(g for g in G.garments_from_parse(labels) if g.group == "shoes")
    crop = G.crop_on_white(photo, shoes)
    assert crop.shape == (6, 42, 3)
    np.testing.assert_array_equal(crop[shoes.mask], photo[90:96, 20:62][shoes.mask])
    assert (crop[~shoes.mask] == 255).all()


def _reference_iou(pred, true, classes):
    out = []
    for c in range(classes):
        inter = np.sum((pred == c) & (true == c))
        union = np.sum((pred == c) | (true == c))
        out.append(inter / union if union else np.nan)
    return np.array(out)


def test_confusion_iou_miou_and_accuracy_match_numpy_loops():
    rng = np.random.default_rng(1)
    classes = 6
    true = rng.integers(0, classes - 1, (40, 30))  # class 5 never true
    pred = np.where(rng.random((40, 30)) < 0.6, true, rng.integers(0, classes - 1, (40, 30)))
    matrix = G.confusion(pred, true, classes)
    assert matrix.sum() == pred.size and matrix[2, 3] == np.sum((true == 2) & (pred == 3))
    ref = _reference_iou(pred, true, classes)
    np.testing.assert_allclose(G.iou_per_class(matrix), ref, equal_nan=True)
    assert G.mean_iou(matrix) == pytest.approx(np.nanmean(ref[1:]))
    assert G.mean_iou(matrix, skip_background=False) == pytest.approx(np.nanmean(ref))
    assert G.pixel_accuracy(matrix) == pytest.approx(np.mean(pred == true))
    with pytest.raises(ValueError):
        G.confusion(pred, true[:-1], classes)


def test_box_iou_and_garment_recall():
    a = [(0, 0, 10, 10), (20, 20, 30, 40)]
    b = [(5, 0, 15, 10), (20, 20, 30, 40), (100, 100, 101, 101)]
    iou = G.box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[1, 1] == pytest.approx(1.0) and iou[0, 2] == 0
    # items: a top and a pair of shoes; garments: the top (right group), shoes box labelled boots, a stray bag
    counts = G.detection_counts(
        pred_boxes=[(0, 0, 10, 10), (20, 20, 30, 38), (50, 50, 60, 60)],
        pred_groups=[1, 11, 12],
        true_boxes=[(0, 0, 10, 9), (20, 20, 30, 40)],
        true_groups=[1, 10],
    )
    assert (counts.items, counts.found, counts.found_any_group, counts.garments, counts.matching) == (2, 1, 2, 3, 1)
    assert counts.recall == 0.5 and counts.recall_any_group == 1.0 and counts.precision == pytest.approx(1 / 3)
    total = counts + G.detection_counts([], [], [(0, 0, 1, 1)], [1])
    assert (total.items, total.found, total.garments) == (3, 1, 3)


def test_scoring_without_the_whole_photo_uses_garment_rows_only():
    from ml.evaluation import garment_rows_only
    from ml.model import Looks

    whole, g1, g2, other = np.eye(4, dtype=np.float32)
    vectors = np.stack([[whole, g1, g2, whole], [other, other, other, other]])
    looks = Looks(vectors, np.array([3, 1]), [[None, None], []], "garments")
    out = garment_rows_only(looks)
    np.testing.assert_array_equal(out[0], [g1, g1, g2, g1])  # whole photo and padding replaced by garment 1
    np.testing.assert_array_equal(out[1], vectors[1])  # no garment: the whole photo stays
    assert looks.vectors[0, 0, 0] == 1.0  # the input is not modified


def test_crop_or_pooled_rows_of_a_both_embedding():
    from ml.evaluation import garment_rows_of_kind
    from ml.model import Looks

    w, c1, p1, c2, p2 = np.eye(5, dtype=np.float32)
    vectors = np.stack([[w, c1, p1, c2, p2], [w, w, w, w, w]])
    looks = Looks(vectors, np.array([5, 1]), [[None, None], []], "garments")
    np.testing.assert_array_equal(garment_rows_of_kind(looks, "crop")[0], [w, c1, c2, w, w])
    np.testing.assert_array_equal(garment_rows_of_kind(looks, "pooled")[0], [w, p1, p2, w, w])
    np.testing.assert_array_equal(garment_rows_of_kind(looks, "crop")[1], vectors[1])
    with pytest.raises(ValueError):
        garment_rows_of_kind(looks, "mask")


def _rasterise(polygons, height, width) -> np.ndarray:
    """Polygons in photo fractions back to a (height, width) mask, even-odd (holes cut out)."""
    from PIL import Image, ImageDraw

    out = np.zeros((height, width), dtype=bool)
    for polygon in polygons:
        canvas = Image.new("1", (width, height), 0)
        ImageDraw.Draw(canvas).polygon([(x * width - 0.5, y * height - 0.5) for x, y in polygon], fill=1)
        out ^= np.asarray(canvas, dtype=bool)
    return out


def test_outline_redraws_the_mask_one_polygon_per_part_with_holes_even_odd():
    labels = np.zeros((200, 160), dtype=np.uint8)
    shoes, coat = G.GROUPS.index("shoes"), G.GROUPS.index("outerwear")
    labels[150:180, 20:60] = shoes
    labels[150:180, 100:150] = shoes  # the other shoe, apart: one garment, two polygons
    labels[10:120, 30:130] = coat
    labels[40:80, 60:100] = 0  # a hole through the coat
    found = {g.group: g for g in G.garments_from_parse(labels, min_area=0.001)}
    for group, parts in (("shoes", 2), ("outerwear", 2)):
        garment = found[group]
        outline = G.garment_outline(garment, (200, 160))
        assert len(outline) == parts
        assert all(0.0 <= v <= 1.0 for polygon in outline for point in polygon for v in point)
        redrawn, truth = _rasterise(outline, 200, 160), garment.full_mask(200, 160)
        iou = (redrawn & truth).sum() / (redrawn | truth).sum()
        assert iou > 0.95, (group, iou)
        assert sum(len(p) for p in outline) < 40  # rectangles need a few corners each, not every pixel


def test_outline_of_an_irregular_garment_is_compact_and_close_and_the_record_is_in_fractions():
    yy, xx = np.mgrid[0:300, 0:240]
    labels = np.where(((yy - 150) / 120.0) ** 2 + ((xx - 110) / 80.0) ** 2 <= 1.0, G.GROUPS.index("dress"), 0)
    garment = G.garments_from_parse(labels.astype(np.uint8))[0]
    outline = G.garment_outline(garment, (300, 240))
    assert len(outline) == 1 and 8 <= len(outline[0]) <= 80
    redrawn, truth = _rasterise(outline, 300, 240), garment.full_mask(300, 240)
    assert (redrawn & truth).sum() / (redrawn | truth).sum() > 0.97
    record = G.garment_record(garment, (300, 240))
    assert record["group"] == "dress" and record["outline"] == outline
    left, top, right, bottom = garment.box
    assert record["box"] == pytest.approx([left / 240, top / 300, right / 240, bottom / 300], abs=1e-4)
    assert record["area"] == pytest.approx(garment.area, abs=1e-5) and 0 < record["confidence"] <= 1
    with pytest.raises(ValueError):
        G.garment_outline(garment, (0, 240))
