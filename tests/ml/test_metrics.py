import numpy as np
import pytest

from ml import metrics


def naive_ranking(scores_row):
    # descending score, ties by index
    return sorted(range(len(scores_row)), key=lambda j: (-scores_row[j], j))


def naive_seed_map(scores, relevant, k):
    out = []
    for s, r in zip(scores, relevant, strict=True):
        order = naive_ranking(s)[:k]
        precisions, hits = [], 0
        for i, j in enumerate(order, start=1):
            if r[j]:
                hits += 1
                precisions.append(hits / i)
        out.append(np.mean(precisions) if precisions else 0.0)
    return np.mean(out)


def naive_ap(scores, relevant, k):
    out = []
    for s, r in zip(scores, relevant, strict=True):
        order = naive_ranking(s)[:k]
        total, hits = 0.0, 0
        for i, j in enumerate(order, start=1):
            if r[j]:
                hits += 1
                total += hits / i
        n = min(int(np.sum(r)), k)
        out.append(total / n if n else 0.0)
    return np.mean(out)


def naive_recall(scores, relevant, k):
    return np.mean([any(r[j] for j in naive_ranking(s)[:k]) for s, r in zip(scores, relevant, strict=True)])


def naive_precision(scores, relevant, k):
    return np.mean([sum(r[j] for j in naive_ranking(s)[:k]) / k for s, r in zip(scores, relevant, strict=True)])


def naive_mrr(scores, relevant):
    out = []
    for s, r in zip(scores, relevant, strict=True):
        order = naive_ranking(s)
        ranks = [i for i, j in enumerate(order, start=1) if r[j]]
        out.append(1 / ranks[0] if ranks else 0.0)
    return np.mean(out)


@pytest.fixture
def data(rng):
    scores = rng.integers(0, 6, size=(40, 30)).astype(float)  # many ties
    relevant = rng.random((40, 30)) < 0.15
    relevant[0] = False  # a query with nothing relevant
    return scores, relevant


@pytest.mark.parametrize("k", [1, 3, 6, 21, 100])
def test_metrics_match_naive_references(data, k):
    scores, relevant = data
    assert metrics.map_at_k_seed(scores, relevant, k) == pytest.approx(naive_seed_map(scores, relevant, k))
    assert metrics.ap_at_k(scores, relevant, k) == pytest.approx(naive_ap(scores, relevant, k))
    assert metrics.recall_at_k(scores, relevant, k) == pytest.approx(naive_recall(scores, relevant, k))
    assert metrics.precision_at_k(scores, relevant, k) == pytest.approx(naive_precision(scores, relevant, k))
    assert metrics.mrr(scores, relevant) == pytest.approx(naive_mrr(scores, relevant))


def test_seed_map_differs_from_standard_ap():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    relevant = np.array([[True, False, False, True]])
    assert metrics.map_at_k_seed(scores, relevant, 2) == pytest.approx(1.0)  # only rank 1 counts
    assert metrics.ap_at_k(scores, relevant, 2) == pytest.approx(0.5)  # divided by min(2 relevant, k=2)


def test_perfect_ranking_scores_one():
    scores = np.eye(5)
    relevant = np.eye(5, dtype=bool)
    for fn in (metrics.map_at_k_seed, metrics.ap_at_k):
        assert fn(scores, relevant, 21) == 1.0
    assert metrics.recall_at_k(scores, relevant, 1) == 1.0
    assert metrics.mrr(scores, relevant) == 1.0


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_bad_k_raises(data, k):
    scores, relevant = data
    with pytest.raises(ValueError):
        metrics.map_at_k_seed(scores, relevant, k)
    with pytest.raises(ValueError):
        metrics.precision_at_k(scores, relevant, k)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        metrics.recall_at_k(np.zeros((3, 4)), np.zeros((3, 5), bool), 1)
    with pytest.raises(ValueError):
        metrics.mrr(np.zeros(4), np.zeros(4, bool))
    with pytest.raises(ValueError):
        metrics.ap_at_k(np.zeros((0, 4)), np.zeros((0, 4), bool), 1)
