"""Query expansion and database-side augmentation (optional post-processing).

alpha-QE / alpha-DBA as in Radenović et al. 2018 (https://arxiv.org/abs/1711.02512):
a vector is replaced by the L2-normalised, similarity^alpha-weighted sum of itself and
its top-k neighbours in a database. AQE is alpha = 0 (plain average).
"""

from __future__ import annotations

import numpy as np


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def expand(
    queries: np.ndarray, database: np.ndarray, k: int = 2, alpha: float = 3.0, *, exclude_self: bool = False
) -> np.ndarray:
    """Each query (n, d) plus its k most similar database vectors (m, d), weighted by sim^alpha."""
    if k < 1:
        raise ValueError("k must be >= 1")
    queries = np.asarray(queries, dtype=np.float32)
    database = np.asarray(database, dtype=np.float32)
    sims = queries @ database.T  # (n, m)
    if exclude_self:
        np.fill_diagonal(sims, -np.inf)
    k = min(k, database.shape[0])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (n, k)
    weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) ** alpha  # (n, k)
    expanded = queries + np.einsum("nk,nkd->nd", weights, database[top])
    return _normalize(expanded)


def database_augment(database: np.ndarray, k: int = 2, alpha: float = 3.0) -> np.ndarray:
    """alpha-DBA: every database vector expanded with its k nearest other database vectors."""
    return expand(database, database, k, alpha, exclude_self=True)


def expand_regions(snapshots: np.ndarray, database: np.ndarray, k: int = 2, alpha: float = 3.0) -> np.ndarray:
    """Query expansion of every region descriptor (n, regions, d) against a database (m, d)."""
    n, r, d = snapshots.shape
    return expand(snapshots.reshape(n * r, d), database, k, alpha).reshape(n, r, d)
