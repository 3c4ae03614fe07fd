"""Pooling and normalisation as pure ``keras.ops`` functions.

Every pooling takes a feature map ``x`` (batch, h, w, c) and averaging weights
``masks`` (regions, h * w) or per sample (batch, regions, h * w), whose rows sum to 1
(``None``: the whole map), and returns (batch, regions, c) — or (batch, c) without masks. Feature maps are assumed
non-negative (post-ReLU), as GeM requires.

- SPoC (Babenko & Lempitsky 2015, https://arxiv.org/abs/1510.07493): the mean.
- MAC (Tolias et al. 2016, https://arxiv.org/abs/1511.05879): the max.
- GeM (Radenović et al. 2018, https://arxiv.org/abs/1711.02512): (mean x^p)^(1/p).
"""

from __future__ import annotations

from keras import ops

EPS = 1e-6


def _flatten(x):
    shape = ops.shape(x)
    return ops.reshape(x, (shape[0], -1, shape[-1]))  # (batch, h * w, c)


def spoc(x, masks=None):
    if masks is None:
        return ops.mean(x, axis=(1, 2))
    masks = ops.cast(masks, x.dtype)
    if len(masks.shape) == 3:  # per-sample regions (batch, regions, h * w)
        return ops.einsum("brn,bnc->brc", masks, _flatten(x))
    return ops.einsum("rn,bnc->brc", masks, _flatten(x))


def gem(x, p=3.0, masks=None):
    p = ops.cast(p, x.dtype)
    powered = ops.power(ops.maximum(x, EPS), p)
    pooled = spoc(powered, masks)
    return ops.power(pooled, 1.0 / p)


def mac(x, masks=None):
    if masks is None:
        return ops.max(x, axis=(1, 2))
    support = ops.cast(ops.greater(masks, 0), x.dtype)
    if len(support.shape) == 2:
        support = support[None]  # (1, regions, h * w)
    flat = _flatten(x)[:, None, :, :]  # (batch, 1, h * w, c)
    return ops.max(flat * support[:, :, :, None], axis=2)  # zeroing outside is valid since x >= 0


def l2_normalize(x, axis=-1):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), EPS * EPS))
