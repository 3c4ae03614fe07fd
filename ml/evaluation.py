"""The CCP-Posts protocol (../shared/datasets/README.md) on descriptors, both directions.

Metrics (percentages, 0..100):

- ``s2i_map21_seed``, ``s2i_ap21``, ``s2i_r1``, ``s2i_r6``: each snapshot ranks all items of
  the split; relevant: the items of its own post.
- ``i2s_r1``, ``i2s_r6``, ``i2s_mrr``: each item ranks the split's snapshots plus the
  distractor snapshots; relevant: its own post's snapshot.
- ``cat_p6`` / ``cat_p6_random``: each snapshot ranks the product gallery; a product counts
  when its category maps to one of the snapshot's item labels (``cat_p6_random``: the
  expected precision of a random ranking, i.e. the share of matching products).

Scoring: :mod:`ml.scoring` (max over snapshot regions); ``regions=1`` scores with the
global descriptor only, a list of region rows with that subset of the regions. Optional
AQE (queries) and DBA (database) from :mod:`ml.postprocess`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml import metrics
from ml.postprocess import database_augment, expand, expand_regions
from ml.scoring import snapshot_item_scores


@dataclass
class EvalPost:
    snapshot: object  # PIL image or path
    items: list = field(default_factory=list)  # PIL images or paths
    labels: list[str] = field(default_factory=list)  # item label names (for category agreement)


@dataclass
class Embeddings:
    snapshots: np.ndarray | None  # (posts, regions, d); None from embed_posts(snapshots=False)
    items: np.ndarray  # (items, d)
    item_post: np.ndarray  # (items,) index of each item's post
    distractors: np.ndarray | None = None  # (m, regions, d)
    gallery: np.ndarray | None = None  # (g, d)
    gallery_labels: list[str] | None = None
    post_labels: list[list[str]] | None = None


def _as_eval_post(post) -> EvalPost:
    if isinstance(post, EvalPost):
        return post
    from ml.datasets.ccp import Post, item_images

    if isinstance(post, Post):
        return EvalPost(post.snapshot_path, item_images(post), [i.label for i in post.items])
    raise TypeError(f"posts must be EvalPost or ml.datasets.ccp.Post, got {type(post).__name__}")


def embed_posts(
    embedder,
    posts: Sequence,
    distractor_snapshots: Sequence = (),
    gallery=None,
    progress=None,
    *,
    scheme=None,
    snapshots: bool = True,
) -> Embeddings:
    """``gallery``: a sequence of (image, category) pairs or objects with ``.path`` and ``.label``;
    ``scheme``: the snapshots' region scheme (None: the artifact's own; "garments" or a window scheme);
    ``snapshots=False``: items and gallery only (``snapshots`` None, for a caller that embeds the
    snapshots itself, e.g. under several schemes)."""
    posts = [_as_eval_post(p) for p in posts]
    say = progress or (lambda f, m: None)
    items = [img for p in posts for img in p.items]
    item_post = np.array([i for i, p in enumerate(posts) for _ in p.items], dtype=np.int64)
    snaps = None
    if snapshots:
        photos = [p.snapshot for p in posts]
        snaps = embedder.embed_snapshots(photos, progress=lambda f, m: say(0.3 * f, m), scheme=scheme)
    item_vecs = embedder.embed_items(items, progress=lambda f, m: say(0.3 + 0.1 * f, m))
    distract = None
    if snapshots and len(distractor_snapshots):
        distract = embedder.embed_snapshots(
            list(distractor_snapshots), progress=lambda f, m: say(0.4 + 0.3 * f, "distractors: " + m), scheme=scheme
        )
    gal, gal_labels = None, None
    if gallery is not None and len(gallery):
        pairs = [(g.path, g.label) if hasattr(g, "label") else (g[0], g[1]) for g in gallery]
        gal = embedder.embed_items([p[0] for p in pairs], progress=lambda f, m: say(0.7 + 0.3 * f, "gallery: " + m))
        gal_labels = [p[1] for p in pairs]
    return Embeddings(snaps, item_vecs, item_post, distract, gal, gal_labels, [list(p.labels) for p in posts])


def _select_regions(snapshots: np.ndarray, regions: int | Sequence[int] | None) -> np.ndarray:
    if regions is None:
        return snapshots
    if isinstance(regions, (int, np.integer)):
        return snapshots[:, : int(regions)]
    return snapshots[:, list(regions)]


def score_embeddings(
    emb: Embeddings,
    *,
    regions: int | Sequence[int] | None = None,
    aqe: int = 0,
    dba: int = 0,
    alpha: float = 3.0,
) -> dict[str, float]:
    """Protocol metrics from precomputed descriptors. ``aqe``/``dba``: neighbours (0 = off).

    ``regions``: all (None), the first n (an int; 1 = global only), or the listed region rows
    (e.g. :func:`ml.regions.subset_rows` of a smaller scheme), for snapshots and distractors alike.
    """
    snaps = _select_regions(emb.snapshots, regions)
    items = emb.items
    distract = _select_regions(emb.distractors, regions) if emb.distractors is not None else None
    all_snaps = snaps if distract is None else np.concatenate([snaps, distract])
    if dba:
        items = database_augment(items, dba, alpha)
    out: dict[str, float] = {}

    # snapshot -> items
    queries = expand_regions(snaps, items, aqe, alpha) if aqe else snaps
    scores = snapshot_item_scores(queries, items)
    relevant = emb.item_post[None, :] == np.arange(len(snaps))[:, None]
    out["s2i_map21_seed"] = metrics.map_at_k_seed(scores, relevant, 21)
    out["s2i_ap21"] = metrics.ap_at_k(scores, relevant, 21)
    out["s2i_r1"] = metrics.recall_at_k(scores, relevant, 1)
    out["s2i_r6"] = metrics.recall_at_k(scores, relevant, 6)

    # item -> snapshots (+ distractors)
    flat = all_snaps.reshape(-1, all_snaps.shape[-1])
    item_queries = expand(emb.items if not dba else items, flat, aqe, alpha) if aqe else items
    scores = snapshot_item_scores(all_snaps, item_queries).T  # (items, snapshots)
    relevant = np.arange(len(all_snaps))[None, :] == emb.item_post[:, None]
    out["i2s_r1"] = metrics.recall_at_k(scores, relevant, 1)
    out["i2s_r6"] = metrics.recall_at_k(scores, relevant, 6)
    out["i2s_mrr"] = metrics.mrr(scores, relevant)

    # category agreement with the product gallery
    if emb.gallery is not None and emb.post_labels is not None:
        from ml.datasets.clothing import gallery_categories

        gallery_labels = np.array(emb.gallery_labels)
        wanted = [gallery_categories(labels) for labels in emb.post_labels]
        relevant = np.array([np.isin(gallery_labels, sorted(w)) for w in wanted])  # (posts, gallery)
        keep = relevant.any(axis=1)
        if keep.any():
            scores = snapshot_item_scores(snaps[keep], emb.gallery)
            out["cat_p6"] = metrics.precision_at_k(scores, relevant[keep], 6)
            out["cat_p6_random"] = float(relevant[keep].mean())
    return {k: 100.0 * v for k, v in out.items()}


def evaluate_posts(
    embedder,
    posts: Sequence,
    distractor_snapshots: Sequence = (),
    gallery=None,
    *,
    regions: int | Sequence[int] | None = None,
    aqe: int = 0,
    dba: int = 0,
    progress=None,
) -> dict[str, float]:
    """Embed the posts (ccp.Post or EvalPost), distractor snapshots and gallery; return the metrics."""
    emb = embed_posts(embedder, posts, distractor_snapshots, gallery, progress=progress)
    return score_embeddings(emb, regions=regions, aqe=aqe, dba=dba)


def garment_rows_only(looks) -> np.ndarray:
    """A :class:`ml.model.Looks`' vectors scored by its garments alone: row 0 (the whole photo) and
    the padding replaced by the first garment's row, for snapshots with at least one garment."""
    vectors = looks.vectors.copy()
    for i, count in enumerate(looks.counts):
        if count > 1:
            vectors[i, 0] = vectors[i, 1]
            vectors[i, count:] = vectors[i, 1]
    return vectors


def garment_rows_of_kind(looks, kind: str) -> np.ndarray:
    """From :class:`ml.model.Looks` embedded with ``garment_descriptor="both"``: the whole photo plus
    only the ``kind`` ("crop" or "pooled") row of each garment, padded with the whole photo."""
    if kind not in ("crop", "pooled"):
        raise ValueError("kind must be 'crop' or 'pooled'")
    vectors = np.repeat(looks.vectors[:, :1], looks.vectors.shape[1], axis=1)
    first = 1 if kind == "crop" else 2
    for i, count in enumerate(looks.counts):
        rows = looks.vectors[i, first:count:2]
        vectors[i, 1 : 1 + len(rows)] = rows
    return vectors


def evaluate_parser(embedder, posts: Sequence, *, threshold: float = 0.5, progress=None) -> dict:
    """The parser on CCP posts (``ml.datasets.ccp.Post``), at each photo's own resolution.

    Pixel accuracy and IoU over :data:`ml.garments.GROUPS` (mIoU over the garment groups, not
    background); garment recall: a protocol item counts as found when a predicted garment of
    its group has box IoU >= ``threshold`` with the item's box (``_any_group``: of any group);
    precision: the share of predicted garments that find an item so.
    """
    from ml.datasets.ccp import label_names, load_label_map
    from ml.garments import (
        CCP_LABEL_GROUPS,
        GROUPS,
        DetectionCounts,
        confusion,
        detection_counts,
        group_lookup,
        iou_per_class,
        mean_iou,
        pixel_accuracy,
    )

    if not posts:
        raise ValueError("need at least one post")
    lookup = group_lookup(label_names(Path(posts[0].annotation_path).parents[2]))
    matrix = np.zeros((len(GROUPS), len(GROUPS)), dtype=np.int64)
    counts = DetectionCounts(0, 0, 0, 0, 0)
    batch = 8
    for start in range(0, len(posts), batch):
        chunk = posts[start : start + batch]
        for post, parsed in zip(chunk, embedder.parse([p.snapshot_path for p in chunk]), strict=True):
            truth = lookup[load_label_map(post.annotation_path)]
            matrix += confusion(parsed[0], truth, len(GROUPS))
            garments = embedder.garments_of(parsed)
            counts = counts + detection_counts(
                [g.box for g in garments],
                [g.group_id for g in garments],
                [item.bbox for item in post.items],
                [GROUPS.index(CCP_LABEL_GROUPS.get(item.label, GROUPS[0])) for item in post.items],
                threshold=threshold,
            )
        if progress:
            progress(min(1.0, (start + batch) / len(posts)), "parsing")
    ious = iou_per_class(matrix)
    return {
        "pixel_accuracy": 100 * pixel_accuracy(matrix),
        "miou": 100 * mean_iou(matrix),
        "iou": {GROUPS[c]: None if np.isnan(ious[c]) else round(100 * float(ious[c]), 1) for c in range(len(GROUPS))},
        "garment_recall": 100 * counts.recall,
        "garment_recall_any_group": 100 * counts.recall_any_group,
        "garment_precision": 100 * counts.precision,
        "garments_per_photo": counts.garments / len(posts),
        "items_per_photo": counts.items / len(posts),
    }
