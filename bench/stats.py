"""Latency statistics shared by the parts that time requests and searches."""

from __future__ import annotations

import numpy as np


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` (NumPy's linear interpolation); None when nothing was measured."""
    return float(np.percentile(values, q)) if values else None
