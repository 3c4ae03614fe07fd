"""Metric-learning losses as pure ``keras.ops`` functions (labels: int class ids).

- ArcFace: Deng et al. 2019, https://arxiv.org/abs/1801.07698 — additive angular margin
  on the target logit: s * cos(theta + m).
- Label-smoothed, temperature-scaled softmax cross-entropy (the CGD paper's auxiliary
  classification loss, https://arxiv.org/abs/1903.10663, section 3.2): the temperature
  divides the *logits* before the softmax.
- Batch-hard triplet loss: Hermans et al. 2017, https://arxiv.org/abs/1703.07737 (used by CGD).
"""

from __future__ import annotations

import math

from keras import ops

from ml.ops import l2_normalize


def arcface_logits(embeddings, weights, labels, *, scale: float = 16.0, margin: float = 0.2):
    """Scaled cosine logits (batch, classes) with the margin added to each row's target angle.

    ``embeddings`` (batch, d) and ``weights`` (classes, d) are L2-normalised here. Where
    theta + m would pass pi (cos theta < cos(pi - m)), the target logit is cos(theta) - m sin(m),
    which keeps it monotonic in theta (the reference implementation's ``th``/``mm`` guard).
    """
    cosine = ops.matmul(l2_normalize(embeddings), ops.transpose(l2_normalize(weights)))
    cosine = ops.clip(cosine, -1.0 + 1e-7, 1.0 - 1e-7)
    sine = ops.sqrt(1.0 - ops.square(cosine))
    with_margin = cosine * math.cos(margin) - sine * math.sin(margin)  # cos(theta + m)
    with_margin = ops.where(
        cosine > math.cos(math.pi - margin), with_margin, cosine - math.sin(math.pi - margin) * margin
    )
    onehot = ops.one_hot(ops.cast(labels, "int32"), ops.shape(weights)[0], dtype=cosine.dtype)
    return scale * (onehot * with_margin + (1.0 - onehot) * cosine)


def smoothed_cross_entropy(logits, labels, *, label_smoothing: float = 0.1, temperature: float = 1.0):
    """Mean cross-entropy of softmax(logits / temperature) against label-smoothed one-hot targets."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    classes = ops.shape(logits)[-1]
    onehot = ops.one_hot(ops.cast(labels, "int32"), classes, dtype=logits.dtype)
    targets = onehot * (1.0 - label_smoothing) + label_smoothing / ops.cast(classes, logits.dtype)
    log_probs = ops.log_softmax(logits / temperature, axis=-1)
    return -ops.mean(ops.sum(targets * log_probs, axis=-1))


def arcface_loss(embeddings, weights, labels, *, scale: float = 16.0, margin: float = 0.2):
    return smoothed_cross_entropy(
        arcface_logits(embeddings, weights, labels, scale=scale, margin=margin), labels, label_smoothing=0.0
    )


def batch_hard_triplet_loss(embeddings, labels, *, margin: float = 0.1):
    """Mean over anchors of relu(max positive distance - min negative distance + margin).

    Euclidean distances between L2-normalised embeddings. Anchors without a positive or
    without a negative in the batch contribute 0.
    """
    x = l2_normalize(embeddings)
    sq = ops.maximum(2.0 - 2.0 * ops.matmul(x, ops.transpose(x)), 0.0)
    dist = ops.sqrt(sq + 1e-12)
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    eye = ops.eye(ops.shape(labels)[0], dtype="bool")
    positive = ops.logical_and(same, ops.logical_not(eye))
    negative = ops.logical_not(same)
    hardest_pos = ops.max(ops.where(positive, dist, 0.0), axis=1)
    hardest_neg = ops.min(ops.where(negative, dist, 1e9), axis=1)
    valid = ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1))
    losses = ops.where(valid, ops.relu(hardest_pos - hardest_neg + margin), 0.0)
    return ops.sum(losses) / ops.maximum(ops.sum(ops.cast(valid, losses.dtype)), 1.0)
