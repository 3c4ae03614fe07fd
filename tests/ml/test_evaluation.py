import numpy as np
import pytest
from PIL import Image

from ml.config import ModelConfig
from ml.evaluation import Embeddings, EvalPost, evaluate_posts, score_embeddings
from ml.model import Embedder


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_perfect_descriptors_score_100(rng):
    centres = unit(rng.normal(size=(5, 16)))
    item_post = np.repeat(np.arange(5), 3)
    items = unit(centres[item_post] + 0.01 * rng.normal(size=(15, 16)))
    snaps = np.repeat(centres[:, None], 4, axis=1)  # (posts, regions, d)
    distractors = unit(rng.normal(size=(6, 4, 16)))
    emb = Embeddings(
        snaps, items, item_post, distractors, gallery=items, gallery_labels=["Pants"] * 15, post_labels=[["jeans"]] * 5
    )
    out = score_embeddings(emb)
    for key in ("s2i_map21_seed", "s2i_ap21", "s2i_r6", "i2s_r1", "i2s_mrr", "cat_p6", "cat_p6_random"):
        assert out[key] == pytest.approx(100.0), key
    assert score_embeddings(emb, aqe=1, dba=1)["s2i_map21_seed"] == pytest.approx(100.0)


def test_region_scoring_beats_global_when_items_match_one_region(rng):
    centres = unit(rng.normal(size=(4, 16)))
    regions = unit(rng.normal(size=(4, 3, 16)))
    regions[:, 2] = centres  # the item matches region 2 only
    emb = Embeddings(regions, centres, np.arange(4))
    assert score_embeddings(emb)["i2s_r1"] == pytest.approx(100.0)
    assert score_embeddings(emb, regions=1)["i2s_r1"] < 100.0


def test_evaluate_posts_end_to_end(rng):
    config = ModelConfig(backbone="efficientnet_lite0", weights=None, dim=8, item_size=48, snapshot_size=(64, 48))
    embedder = Embedder.build(config)
    img = lambda: Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))  # noqa: E731
    posts = [EvalPost(img(), [img(), img()], ["dress", "shoes"]) for _ in range(3)]
    out = evaluate_posts(embedder, posts, distractor_snapshots=[img()], gallery=[(img(), "Dress"), (img(), "Hat")])
    assert set(out) >= {
        "s2i_map21_seed",
        "s2i_ap21",
        "s2i_r6",
        "i2s_r1",
        "i2s_r6",
        "i2s_mrr",
        "cat_p6",
        "cat_p6_random",
    }
    assert all(0.0 <= v <= 100.0 for v in out.values())


def test_scoring_a_list_of_region_rows_equals_scoring_those_regions(rng):
    snaps = unit(rng.normal(size=(5, 6, 16)))
    items = unit(rng.normal(size=(9, 16)))
    distractors = unit(rng.normal(size=(4, 6, 16)))
    item_post = rng.integers(0, 5, 9)
    rows = [0, 2, 5]
    subset = score_embeddings(Embeddings(snaps, items, item_post, distractors), regions=rows)
    sliced = score_embeddings(Embeddings(snaps[:, rows], items, item_post, distractors[:, rows]))
    assert subset == pytest.approx(sliced)
    assert score_embeddings(Embeddings(snaps, items, item_post, distractors), regions=[0]) == pytest.approx(
        score_embeddings(Embeddings(snaps, items, item_post, distractors), regions=1)
    )
