import numpy as np
import pytest

from ml import postprocess, scoring


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_region_scores_are_max_over_regions(rng):
    snaps = unit(rng.normal(size=(4, 5, 8))).astype(np.float32)
    items = unit(rng.normal(size=(7, 8))).astype(np.float32)
    scores = scoring.snapshot_item_scores(snaps, items)
    naive = np.array([[max(float(r @ i) for r in s) for i in items] for s in snaps])
    np.testing.assert_allclose(scores, naive, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scoring.item_snapshot_scores(items, snaps), naive.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scoring.snapshot_item_scores(snaps, items, regions=1), snaps[:, 0] @ items.T, rtol=1e-5)
    np.testing.assert_allclose(scoring.snapshot_item_scores(snaps[:, 0], items), snaps[:, 0] @ items.T, rtol=1e-5)


def test_scoring_rejects_mismatched_dims(rng):
    with pytest.raises(ValueError):
        scoring.snapshot_item_scores(rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 6)))


def test_query_expansion_matches_reference(rng):
    q = unit(rng.normal(size=(3, 6))).astype(np.float32)
    db = unit(rng.normal(size=(10, 6))).astype(np.float32)
    out = postprocess.expand(q, db, k=2, alpha=1.0)
    for qi, oi in zip(q, out, strict=True):
        sims = db @ qi
        top = np.argsort(-sims)[:2]
        ref = qi + sum(max(sims[j], 0) * db[j] for j in top)
        np.testing.assert_allclose(oi, ref / np.linalg.norm(ref), rtol=1e-5, atol=1e-6)


def test_dba_excludes_self(rng):
    db = unit(rng.normal(size=(6, 4))).astype(np.float32)
    out = postprocess.database_augment(db, k=1, alpha=0.0)
    sims = db @ db.T
    np.fill_diagonal(sims, -np.inf)
    ref = db + db[np.argmax(sims, axis=1)]
    np.testing.assert_allclose(out, ref / np.linalg.norm(ref, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    assert postprocess.expand_regions(db.reshape(3, 2, 4), db, k=2).shape == (3, 2, 4)
