from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EvalPost:
    snapshot: object
    items: list = field(default_factory=list)


def evaluate_posts(embedder, posts, **_) -> dict:
    from ml.metrics import map_at_k_seed, recall_at_k
    from ml.scoring import snapshot_item_scores

    snapshots = embedder.embed_snapshots([p.snapshot for p in posts])  # (posts, regions, dim)
    item_images = [image for p in posts for image in p.items]
    owner = np.array([n for n, p in enumerate(posts) for _ in p.items])
    items = embedder.embed_items(item_images)  # (items, dim)
    scores = snapshot_item_scores(snapshots, items)
    relevant = owner[None, :] == np.arange(len(posts))[:, None]
    return {
        "s2i_map21_seed": 100 * map_at_k_seed(scores, relevant, 21),
        "s2i_r6": 100 * recall_at_k(scores, relevant, 6),
    }
