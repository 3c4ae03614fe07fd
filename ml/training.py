"""Training: stage 1 trains the CGD head on cached feature maps of a frozen backbone.

Records are ``(image, class_id, kind)`` with ``kind`` in {"snapshot", "item"} and
``image`` a path (or a PIL image); a post (snapshot + its items) is one class.

Stage 1 (this module): every record is run through the frozen backbone once per view
(view 0 plain, further views randomly cropped, flipped and colour-jittered) and the
feature maps are cached (float16, under ``cache_dir``, keyed by the records, the
backbone and the views). The head then trains on class-balanced batches (P classes x
K samples) drawn from the cache: each item view gives one descriptor, each snapshot
view gives its global descriptor plus its best-matching region of the region scheme
(the region whose descriptor is closest to the class — the regions are in the loop,
as they are at serving time). Loss: ArcFace (or batch-hard triplet), plus the optional
auxiliary smoothed/temperature-scaled classification on the first branch.

Stage 2 (fine-tuning the last backbone stage) is not implemented yet.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ml.config import ModelConfig

Progress = Callable[[float, str], None]
KINDS = ("snapshot", "item")


@dataclass
class TrainOptions:
    item_views: int = 4
    snapshot_views: int = 3
    epochs: int = 30
    classes_per_batch: int = 32
    items_per_class: int = 3
    snapshots_per_class: int = 1
    learning_rate: float = 1e-3
    eval_every: int = 5  # epochs between validation checks (with val_records)
    patience: int = 2  # checks without improvement before stopping
    batch_size: int = 16  # backbone batch when caching
    checkpoint: bool = True


@dataclass
class FeatureCache:
    items: np.ndarray  # (item_records * views, h, w, c) float16
    item_classes: np.ndarray  # (item_records * views,)
    item_view: np.ndarray  # view index of each row
    snapshots: np.ndarray  # (snapshot_records * views, hs, ws, c) float16
    snapshot_classes: np.ndarray
    snapshot_view: np.ndarray


def _image_key(image) -> str:
    if isinstance(image, (str, Path)):
        return str(image)  # keyed by path: an image changed in place needs a fresh cache_dir
    return "pil:" + hashlib.sha1(image.tobytes()).hexdigest()  # in-memory image: key on its pixels


def _key(config: ModelConfig, records, views, seed) -> str:
    payload = {
        "backbone": config.backbone,
        "weights": str(config.weights),
        "item": config.item_size,
        "snapshot": list(config.snapshot_size),
        "views": list(views),
        "seed": seed,
        "records": [(_image_key(r[0]), int(r[1]), r[2]) for r in records],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _validate(records) -> list[tuple]:
    out = []
    for rec in records:
        if len(rec) != 3 or rec[2] not in KINDS:
            raise ValueError(f"records must be (image, class_id, kind in {KINDS}), got {rec!r}")
        out.append((rec[0], int(rec[1]), rec[2]))
    return out


def cache_features(
    embedder,
    records,
    cache_dir,
    *,
    item_views: int = 1,
    snapshot_views: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> FeatureCache:
    """Backbone feature maps of every record and view, cached as .npy files (memory-mapped on reuse)."""
    from concurrent.futures import ThreadPoolExecutor

    from ml.images import augment, letterbox, open_rgb

    records = _validate(records)
    config = embedder.config
    key = _key(config, records, (item_views, snapshot_views), seed)
    folder = Path(cache_dir) / f"features-{key}"
    done = folder / "meta.json"
    arrays = {}
    if done.exists():
        for name in ("items", "snapshots"):
            arrays[name] = np.load(folder / f"{name}.npy", mmap_mode="r")
        for name in ("item_classes", "item_view", "snapshot_classes", "snapshot_view"):
            arrays[name] = np.load(folder / f"{name}.npy")
        return FeatureCache(**arrays)

    folder.mkdir(parents=True, exist_ok=True)
    jobs = {"item": [], "snapshot": []}
    for index, (image, cls, kind) in enumerate(records):
        for view in range(item_views if kind == "item" else snapshot_views):
            jobs[kind].append((index, image, cls, view))
    total = sum(len(v) for v in jobs.values())
    done_count = 0
    started = time.time()

    def prepare(job, size, min_area):
        index, image, _cls, view = job
        img = open_rgb(image)
        if view > 0:
            img = augment(img, np.random.default_rng([seed, index, view]), min_area=min_area)
        return letterbox(img, size)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind, size, min_area in (("item", (config.item_size,) * 2, 0.6), ("snapshot", config.snapshot_size, 0.8)):
            kind_jobs = jobs[kind]
            name = "items" if kind == "item" else "snapshots"
            from ml.backbones import feature_channels
            from ml.model import feature_map_shape

            h, w = feature_map_shape(embedder.backbone, size)
            out = np.lib.format.open_memmap(
                folder / f"{name}.npy",
                mode="w+",
                dtype=np.float16,
                shape=(len(kind_jobs), h, w, feature_channels(config.backbone)),
            )
            chunks = [kind_jobs[i : i + batch_size] for i in range(0, len(kind_jobs), batch_size)]
            pending = pool.map(lambda chunk, s=size, a=min_area: np.stack([prepare(j, s, a) for j in chunk]), chunks)
            row = 0
            for chunk, pixels in zip(chunks, pending, strict=True):
                out[row : row + len(chunk)] = embedder._features(pixels).astype(np.float16)
                row += len(chunk)
                done_count += len(chunk)
                if progress:
                    rate = done_count / max(time.time() - started, 1e-6)
                    progress(
                        done_count / max(total, 1), f"caching feature maps {done_count}/{total} ({rate:.1f} img/s)"
                    )
            out.flush()
            del out
            np.save(
                folder / f"{kind if kind == 'item' else 'snapshot'}_classes.npy",
                np.array([j[2] for j in kind_jobs], dtype=np.int64),
            )
            np.save(
                folder / f"{kind if kind == 'item' else 'snapshot'}_view.npy",
                np.array([j[3] for j in kind_jobs], dtype=np.int64),
            )
    done.write_text(json.dumps({"records": len(records), "created": time.time()}))
    return cache_features(
        embedder,
        records,
        cache_dir,
        item_views=item_views,
        snapshot_views=snapshot_views,
        seed=seed,
        batch_size=batch_size,
    )


def _view0(cache: FeatureCache):
    items = np.flatnonzero(cache.item_view == 0)
    snaps = np.flatnonzero(cache.snapshot_view == 0)
    return items, snaps


def descriptors_from_cache(head, cache: FeatureCache, masks, *, rows_items=None, rows_snaps=None, batch: int = 64):
    """Head descriptors of cached maps: items (n, d) and snapshot regions (m, regions, d)."""
    rows_items, rows_snaps = (rows_items, rows_snaps) if rows_items is not None else _view0(cache)
    from ml.model import _numpy

    items = [
        _numpy(head(np.asarray(cache.items[rows_items[i : i + batch]], dtype=np.float32)))
        for i in range(0, len(rows_items), batch)
    ]
    snaps = [
        _numpy(head(np.asarray(cache.snapshots[rows_snaps[i : i + batch]], dtype=np.float32), masks=masks))
        for i in range(0, len(rows_snaps), batch)
    ]
    return np.concatenate(items), np.concatenate(snaps)


def cache_map_score(head, cache: FeatureCache, masks) -> float:
    """s->i mAP@21 (seed definition, region scoring) over the cache's plain views."""
    from ml.metrics import map_at_k_seed
    from ml.scoring import snapshot_item_scores

    rows_items, rows_snaps = _view0(cache)
    items, snaps = descriptors_from_cache(head, cache, masks, rows_items=rows_items, rows_snaps=rows_snaps)
    relevant = cache.snapshot_classes[rows_snaps][:, None] == cache.item_classes[rows_items][None, :]
    return 100.0 * map_at_k_seed(snapshot_item_scores(snaps, items), relevant, 21)


def train(
    records: Sequence,
    config: ModelConfig,
    out_dir,
    *,
    val_records: Sequence | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    options: TrainOptions | None = None,
    cache_dir=None,
    backbone_cache_dir=None,
    embedder=None,
) -> dict:
    """Train the head on ``records``, write an artifact to ``out_dir`` and return its metrics.

    ``cache_dir`` holds the feature-map cache (default ``~/.cache/lookbook/features``; large:
    about 0.2 MB per item view and 0.6 MB per snapshot view at the default sizes);
    ``backbone_cache_dir`` the converted ImageNet weights. With ``val_records`` the head is
    checked every ``options.eval_every`` epochs and training stops early when the val
    s->i mAP@21 stops improving (the best head is kept).

    Metrics: ``train_map21_before``/``train_map21_after`` (s->i mAP@21 of the plain training views),
    ``val_map21`` (best, with ``val_records``), ``epochs``, ``seconds``.
    """
    import keras
    import tensorflow as tf

    from ml import artifact
    from ml.losses import arcface_loss, batch_hard_triplet_loss, smoothed_cross_entropy
    from ml.model import Embedder, feature_map_shape
    from ml.ops import l2_normalize
    from ml.regions import region_masks

    options = options or TrainOptions()
    report = progress or (lambda fraction, message: None)
    started = time.time()
    records = _validate(records)
    out_dir = Path(out_dir)
    if cache_dir is None:  # never inside the artifact: the cache is gigabytes
        from ml.backbones import DEFAULT_CACHE_DIR

        cache_dir = DEFAULT_CACHE_DIR / "features"
    cache_dir = Path(cache_dir)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)

    if embedder is not None and embedder.config != config:
        raise ValueError("embedder.config differs from config")
    embedder = embedder or Embedder.build(config, cache_dir=backbone_cache_dir)
    masks = region_masks(config.regions, *feature_map_shape(embedder.backbone, config.snapshot_size))
    report(0.0, "caching training feature maps")
    cache = cache_features(
        embedder,
        records,
        cache_dir,
        item_views=options.item_views,
        snapshot_views=options.snapshot_views,
        seed=seed,
        batch_size=options.batch_size,
        progress=lambda f, m: report(0.6 * f, m),
    )
    val_cache = None
    if val_records:
        val_cache = cache_features(
            embedder,
            val_records,
            cache_dir,
            seed=seed,
            batch_size=options.batch_size,
            progress=lambda f, m: report(0.6 + 0.05 * f, "val: " + m),
        )

    classes = np.unique(np.concatenate([cache.item_classes, cache.snapshot_classes]))
    class_index = {c: i for i, c in enumerate(classes.tolist())}
    item_rows = {c: np.flatnonzero(cache.item_classes == c) for c in classes.tolist()}
    snap_rows = {c: np.flatnonzero(cache.snapshot_classes == c) for c in classes.tolist()}

    head_model = embedder.head_model
    head = embedder.head
    dim = embedder.dim
    n_classes = len(classes)
    class_weights = keras.Variable(keras.initializers.GlorotUniform(seed=seed)((n_classes, dim)), name="arcface_w")
    aux = keras.layers.Dense(n_classes, name="aux_classifier") if config.aux_weight > 0 else None
    if aux is not None:
        aux.build((None, config.dim or dim // len(config.pooling)))
    optimizer = keras.optimizers.Adam(options.learning_rate)
    variables = list(head.trainable_variables) + (list(aux.trainable_variables) if aux else [])
    if config.loss == "arcface":
        variables.append(class_weights)
    # Which sample kinds exist is decided once, in Python: inside the traced step, batch sizes are unknown.
    has_items, has_snapshots = len(cache.item_classes) > 0, len(cache.snapshot_classes) > 0
    n_regions = masks.shape[0]
    masks_t = tf.constant(masks)

    train_before = cache_map_score(head, cache, masks)
    steps_per_epoch = max(1, int(np.ceil(n_classes / options.classes_per_batch)))

    def sample_batch():
        chosen = rng.choice(classes, size=min(options.classes_per_batch, n_classes), replace=False)
        irows, ilabels, srows, slabels = [], [], [], []
        for c in chosen.tolist():
            if len(item_rows[c]):
                picks = rng.choice(
                    item_rows[c], options.items_per_class, replace=len(item_rows[c]) < options.items_per_class
                )
                irows += sorted(picks.tolist())
                ilabels += [class_index[c]] * len(picks)
            if len(snap_rows[c]):
                picks = rng.choice(
                    snap_rows[c], options.snapshots_per_class, replace=len(snap_rows[c]) < options.snapshots_per_class
                )
                srows += sorted(picks.tolist())
                slabels += [class_index[c]] * len(picks)
        return irows, np.array(ilabels), srows, np.array(slabels)

    def load_rows(array, rows):
        order = np.argsort(rows)
        data = np.asarray(array[np.asarray(rows)[order]], dtype=np.float32)
        out = np.empty_like(data)
        out[order] = data
        return out

    @tf.function(reduce_retracing=True)
    def step(xi, yi, xs, ys):
        with tf.GradientTape() as tape:
            embs, firsts, labels = [], [], []
            if has_items:
                ei, fi = head(xi, return_branches=True)  # (bi, d), (bi, d_branch)
                embs.append(ei)
                firsts.append(fi)
                labels.append(yi)
            if has_snapshots:
                es, fs = head(xs, masks=masks_t, return_branches=True)  # (bs, regions, d)
                embs.append(es[:, 0])
                firsts.append(fs[:, 0])
                labels.append(ys)
                if n_regions > 1:  # the region the class is most likely worn in, chosen without gradient
                    if config.loss == "arcface":
                        anchor = tf.gather(l2_normalize(class_weights), ys)  # (bs, d)
                    elif has_items:
                        same = tf.cast(tf.equal(ys[:, None], yi[None, :]), es.dtype)  # (bs, bi)
                        anchor = tf.matmul(same, ei)  # sum of the class's item descriptors in the batch
                    else:
                        anchor = es[:, 0]
                    sims = tf.einsum("brd,bd->br", tf.stop_gradient(es), tf.stop_gradient(anchor))
                    best = tf.argmax(sims[:, 1:], axis=1, output_type=tf.int32) + 1  # best non-global region
                    embs.append(tf.gather(es, best, axis=1, batch_dims=1))
                    firsts.append(tf.gather(fs, best, axis=1, batch_dims=1))
                    labels.append(ys)
            emb = tf.concat(embs, 0)
            lab = tf.concat(labels, 0)
            if config.loss == "arcface":
                loss = arcface_loss(emb, class_weights, lab, scale=config.arcface_scale, margin=config.arcface_margin)
            else:
                loss = batch_hard_triplet_loss(emb, lab, margin=config.triplet_margin)
            if aux is not None:
                logits = aux(l2_normalize(tf.concat(firsts, 0)))
                loss += config.aux_weight * smoothed_cross_entropy(
                    logits, lab, label_smoothing=config.label_smoothing, temperature=config.temperature
                )
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    best_val, best_weights, bad_checks, history = -1.0, None, 0, []
    epochs_run = 0
    for epoch in range(options.epochs):
        losses = []
        for _ in range(steps_per_epoch):
            irows, yi, srows, ys = sample_batch()
            xi = load_rows(cache.items, irows)
            xs = load_rows(cache.snapshots, srows)
            losses.append(
                float(step(tf.constant(xi), tf.constant(yi, tf.int32), tf.constant(xs), tf.constant(ys, tf.int32)))
            )
        epochs_run = epoch + 1
        entry = {"epoch": epochs_run, "loss": float(np.mean(losses))}
        message = f"epoch {epochs_run}/{options.epochs} loss {entry['loss']:.4f}"
        if val_cache is not None and (epochs_run % options.eval_every == 0 or epochs_run == options.epochs):
            entry["val_map21"] = cache_map_score(head, val_cache, masks)
            message += f" val mAP@21 {entry['val_map21']:.2f}"
            if entry["val_map21"] > best_val:
                best_val, best_weights, bad_checks = entry["val_map21"], head_model.get_weights(), 0
                if options.checkpoint:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    head_model.save_weights(out_dir / "checkpoint-head.weights.h5")
            else:
                bad_checks += 1
        history.append(entry)
        report(0.65 + 0.33 * epochs_run / options.epochs, message)
        if val_cache is not None and bad_checks > options.patience:
            break
    if best_weights is not None:
        head_model.set_weights(best_weights)

    metrics = {
        "train_map21_before": train_before,
        "train_map21_after": cache_map_score(head, cache, masks),
        "epochs": epochs_run,
        "steps": epochs_run * steps_per_epoch,
        "seconds": time.time() - started,
        "gem_p": [float(np.asarray(p.p)) for p in head.pools if hasattr(p, "p")],
    }
    if val_cache is not None:
        metrics["val_map21"] = best_val
    info = {
        "kind": "trained",
        "options": asdict(options),
        "seed": seed,
        "records": len(records),
        "classes": n_classes,
        "history": history,
    }
    artifact.save(embedder, out_dir, metrics=metrics, info=info)
    (out_dir / "checkpoint-head.weights.h5").unlink(missing_ok=True)
    report(1.0, f"done: train mAP@21 {train_before:.1f} -> {metrics['train_map21_after']:.1f}")
    return metrics
