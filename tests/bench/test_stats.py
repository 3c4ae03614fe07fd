"""The bench's latency percentile (linear interpolation between ranks), and its answer when nothing was measured."""

import pytest

from bench.stats import percentile


def test_percentile_interpolates_between_ranks_and_is_none_for_no_values():
    values = [3.0, 1.0, 4.0, 1.5, 9.0]  # sorted: 1, 1.5, 3, 4, 9
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(4.0 + 0.8 * (9.0 - 4.0))  # rank 0.95 * 4 = 3.8
    assert percentile([], 95) is None
