import math

import numpy as np
import pytest

from ml import losses


def norm(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_arcface_loss(emb, w, labels, s, m):
    cos = np.clip(norm(emb) @ norm(w).T, -1 + 1e-7, 1 - 1e-7)
    logits = s * cos.copy()
    for i, y in enumerate(labels):
        theta = math.acos(cos[i, y])
        target = math.cos(theta + m) if theta + m < math.pi else cos[i, y] - math.sin(math.pi - m) * m
        logits[i, y] = s * target
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


def test_arcface_matches_numpy(rng):
    emb = rng.normal(size=(6, 5)).astype(np.float32)
    w = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 0, 1])
    got = float(losses.arcface_loss(emb, w, labels, scale=16.0, margin=0.2))
    assert got == pytest.approx(np_arcface_loss(emb, w, labels, 16.0, 0.2), rel=1e-4)
    # the margin makes the task harder: higher loss than plain scaled softmax
    assert got > float(losses.arcface_loss(emb, w, labels, scale=16.0, margin=0.0))


def test_arcface_guard_past_pi():
    emb = np.array([[1.0, 0.0]], np.float32)
    w = np.array([[-1.0, 0.01], [0.0, 1.0]], np.float32)  # target almost opposite
    got = float(losses.arcface_loss(emb, w, np.array([0]), scale=4.0, margin=0.5))
    assert got == pytest.approx(np_arcface_loss(emb, w, np.array([0]), 4.0, 0.5), rel=1e-4)


def np_smoothed_ce(logits, labels, eps, t):
    z = logits / t
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    k = logits.shape[1]
    target = np.full_like(logits, eps / k)
    target[np.arange(len(labels)), labels] += 1 - eps
    return -np.mean((target * logp).sum(axis=1))


def test_smoothed_temperature_cross_entropy_matches_numpy(rng):
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5)
    got = float(losses.smoothed_cross_entropy(logits, labels, label_smoothing=0.1, temperature=0.5))
    assert got == pytest.approx(np_smoothed_ce(logits, labels, 0.1, 0.5), rel=1e-5)


def test_temperature_changes_the_loss(rng):
    logits = rng.normal(size=(5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5)
    a = float(losses.smoothed_cross_entropy(logits, labels, label_smoothing=0.1, temperature=1.0))
    b = float(losses.smoothed_cross_entropy(logits, labels, label_smoothing=0.1, temperature=0.5))
    assert abs(a - b) > 1e-3
    with pytest.raises(ValueError):
        losses.smoothed_cross_entropy(logits, labels, temperature=0.0)


def np_batch_hard(emb, labels, margin):
    x = norm(emb)
    d = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0) + 1e-12)
    vals = []
    for i in range(len(x)):
        pos = [d[i, j] for j in range(len(x)) if labels[j] == labels[i] and j != i]
        neg = [d[i, j] for j in range(len(x)) if labels[j] != labels[i]]
        if pos and neg:
            vals.append(max(max(pos) - min(neg) + margin, 0.0))
    return np.mean(vals) if vals else 0.0


def test_batch_hard_triplet_matches_numpy(rng):
    emb = rng.normal(size=(9, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3, 0])  # class 3 has no positive
    got = float(losses.batch_hard_triplet_loss(emb, labels, margin=0.3))
    assert got == pytest.approx(np_batch_hard(emb, labels, 0.3), rel=1e-4, abs=1e-6)


def test_triplet_zero_for_separated_classes():
    emb = np.array([[1, 0], [1, 0.01], [-1, 0], [-1, 0.01]], np.float32)
    assert float(losses.batch_hard_triplet_loss(emb, np.array([0, 0, 1, 1]), margin=0.1)) == pytest.approx(0.0)
