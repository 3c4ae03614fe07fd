import numpy as np
import pytest

from ml.regions import MULTISCALE32_SUBSETS, REGION_SCHEMES, region_masks, subset_rows


def test_every_scheme_starts_with_the_whole_map_and_has_at_most_32_regions():
    for name, boxes in REGION_SCHEMES.items():
        assert boxes[0] == (0.0, 0.0, 1.0, 1.0), name
        assert 1 <= len(boxes) <= 32, name
    assert [len(REGION_SCHEMES[n]) for n in ("multiscale32", "multiscale16", "multiscale10", "multiscale6")] == [
        32,
        16,
        10,
        6,
    ]


@pytest.mark.parametrize("name", sorted(MULTISCALE32_SUBSETS) + ["global"])
def test_smaller_schemes_are_rows_of_multiscale32(name):
    rows = subset_rows(name, "multiscale32")
    full = region_masks("multiscale32", 19, 13)
    # scoring a multiscale32 embedding with these rows == embedding with the smaller scheme
    np.testing.assert_array_equal(region_masks(name, 19, 13), full[rows])
    if name in MULTISCALE32_SUBSETS:
        assert rows == MULTISCALE32_SUBSETS[name]


def test_subset_rows_rejects_non_subsets_and_unknown_names():
    with pytest.raises(ValueError, match="not a subset"):
        subset_rows("multiscale32", "multiscale16")
    with pytest.raises(ValueError, match="unknown region scheme"):
        subset_rows("multiscale7", "multiscale32")
