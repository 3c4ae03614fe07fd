"""Retrieval metrics as vectorised pure functions.

All take ``scores`` (queries, candidates), higher = more similar, and a boolean
``relevant`` of the same shape. Ranking: candidates sorted by descending score; ties
are broken by candidate index (stable sort), so results are deterministic. Ranks are
1-based. A query with no relevant candidate (in the cut-off) contributes 0, and
stays in the mean. Raise ``ValueError`` on mismatched shapes, empty inputs or a
cut-off ``k`` that is not a positive integer (``k`` larger than the number of
candidates is the same as ``k`` = all candidates).
"""

from __future__ import annotations

import numbers

import numpy as np


def _check(scores, relevant, k=None):
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.ndim != 2 or scores.shape != relevant.shape:
        raise ValueError(
            f"scores and relevant must be 2-D with the same shape, got {scores.shape} and {relevant.shape}"
        )
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError("need at least one query and one candidate")
    if k is not None and (isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return scores, relevant


def ranked_relevance(scores, relevant, k: int | None = None) -> np.ndarray:
    """(queries, min(k, candidates)) bool: is the candidate at rank i relevant."""
    scores, relevant = _check(scores, relevant, k)
    order = np.argsort(-scores, axis=1, kind="stable")
    if k is not None:
        order = order[:, :k]
    return np.take_along_axis(relevant, order, axis=1)


def _precision_sums(hits: np.ndarray) -> np.ndarray:
    ranks = np.arange(1, hits.shape[1] + 1)
    precision_at_i = np.cumsum(hits, axis=1) / ranks
    return (precision_at_i * hits).sum(axis=1)  # sum of precision@i over relevant ranks i


def map_at_k_seed(scores, relevant, k: int = 21) -> float:
    """The seed's mAP@k: per query, the mean of precision@i over the ranks i <= k holding a
    relevant candidate (0 if none), averaged over queries."""
    hits = ranked_relevance(scores, relevant, k)
    n_hits = hits.sum(axis=1)
    return float(np.mean(np.where(n_hits > 0, _precision_sums(hits) / np.maximum(n_hits, 1), 0.0)))


def ap_at_k(scores, relevant, k: int = 21) -> float:
    """Standard mAP@k: the same sum of precisions divided by min(#relevant, k) (0 if none relevant)."""
    hits = ranked_relevance(scores, relevant, k)
    n_rel = np.minimum(np.asarray(relevant).sum(axis=1), hits.shape[1])
    return float(np.mean(np.where(n_rel > 0, _precision_sums(hits) / np.maximum(n_rel, 1), 0.0)))


def recall_at_k(scores, relevant, k: int) -> float:
    """Share of queries with at least one relevant candidate in the top k (the retrieval 'R@K')."""
    return float(np.mean(ranked_relevance(scores, relevant, k).any(axis=1)))


def precision_at_k(scores, relevant, k: int) -> float:
    """Mean over queries of (#relevant in the top k) / k."""
    _check(scores, relevant, k)
    hits = ranked_relevance(scores, relevant, k)
    return float(np.mean(hits.sum(axis=1) / k))


def mrr(scores, relevant) -> float:
    """Mean reciprocal rank of the first relevant candidate (0 for a query with none)."""
    hits = ranked_relevance(scores, relevant)
    first = np.argmax(hits, axis=1)
    return float(np.mean(np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)))
