"""Training in two stages, both on feature maps cached once per augmented view.

Records are ``(image, class_id, kind)`` with ``kind`` in {"snapshot", "item"} and
``image`` a path (or a PIL image); a post (snapshot + its items) is one class.

Every record is run through the frozen part of the backbone once per view (view 0
plain, further views randomly cropped, flipped and colour-jittered) and the maps are
cached (float16, under ``cache_dir``, keyed by the records, the sizes, the views and a
digest of the weights that produced them). Training draws class-balanced batches
(P classes x K samples) from the cache: each item view gives one descriptor, each
snapshot view gives its global descriptor plus its best-matching region of the region
scheme (the region whose descriptor is closest to the class — the regions are in the
loop, as they are at serving time). Loss: ArcFace (or batch-hard triplet), plus the
optional auxiliary smoothed/temperature-scaled classification on the first branch.

- Stage 1 (:func:`train`): frozen backbone; the CGD head trains on cached final maps.
- Stage 2 (``TrainOptions.stage2_epochs`` in :func:`train`, or :func:`finetune` from a
  stage-1 artifact): the last ``finetune_stages`` backbone stages (EfficientNet-Lite: the
  last MBConv stage(s) + the 1x1 top convolution; ResNet50: conv5) train with the head, on
  cached maps at the *input* of that part, so the frozen prefix still runs once per view.
  The backbone part gets its own (lower) learning rate; its BatchNorm layers stay in
  inference mode (frozen statistics: the batches are small). ArcFace class weights are
  initialised from the class means of the current descriptors ("imprinting").

Mixed precision (``TrainOptions.mixed_precision``): ``"auto"`` turns it on only when
TensorFlow sees a GPU. The trainable backbone part and the head's projections then compute
in float16 (``mixed_float16`` policy, float32 variables) with dynamic loss scaling
(``keras.optimizers.LossScaleOptimizer``); descriptors, losses and ArcFace logits stay
float32. The policies are set on those layers only and restored afterwards.
"""

from __future__ import annotations

import contextlib
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
MIXED_PRECISION = ("auto", "on", "off")


@dataclass
class TrainOptions:
    item_views: int = 4
    snapshot_views: int = 3
    epochs: int = 30  # stage 1
    classes_per_batch: int = 32
    items_per_class: int = 3
    snapshots_per_class: int = 1
    learning_rate: float = 1e-3  # stage 1 (head)
    eval_every: int = 5  # epochs between validation checks (with val_records) and checkpoints
    patience: int = 2  # checks without improvement before stopping
    batch_size: int = 16  # backbone batch when caching
    checkpoint: bool = True
    mixed_precision: str = "auto"  # "auto": on only when TensorFlow sees a GPU; "on"; "off"
    # stage 2: fine-tuning the end of the backbone with the head
    stage2_epochs: int = 0  # 0: stage 1 only (train); finetune() defaults to 10 when this is 0
    finetune_stages: int = 1  # last backbone stages fine-tuned (Lite: + the top conv; ResNet50: conv5)
    backbone_learning_rate: float = 1e-4
    stage2_learning_rate: float = 1e-4  # head (and ArcFace weights) in stage 2
    # stage 1 also caches the stage-2 input maps in its backbone pass (a little more disk), so a
    # later finetune() from its artifact needs no second pass over the images
    prepare_stage2: bool = True

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.finetune_stages < 1:
            raise ValueError("finetune_stages must be >= 1")


@dataclass
class FeatureCache:
    items: np.ndarray  # (item_records * views, h, w, c) float16
    item_classes: np.ndarray  # (item_records * views,)
    item_view: np.ndarray  # view index of each row
    snapshots: np.ndarray  # (snapshot_records * views, hs, ws, c) float16
    snapshot_classes: np.ndarray
    snapshot_view: np.ndarray


def use_mixed_precision(mode: str) -> bool:
    """Whether ``mode`` ("auto" | "on" | "off") means float16 compute here: "auto" = a GPU is visible."""
    if mode not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def mixed_precision_policy(layers, enabled: bool = True):
    """Run ``layers`` under the ``mixed_float16`` policy inside the block, restoring their policies after.

    Only these layers change: the global Keras policy is never touched, so nothing leaks to other code.
    """
    import keras

    layers = [layer for layer in layers if not isinstance(layer, keras.layers.InputLayer)] if enabled else []
    saved = [layer.dtype_policy for layer in layers]
    try:
        for layer in layers:
            layer.dtype_policy = keras.DTypePolicy("mixed_float16")
        yield
    finally:
        for layer, policy in zip(layers, saved, strict=True):
            layer.dtype_policy = policy


def _image_key(image) -> str:
    if isinstance(image, (str, Path)):
        return str(image)  # keyed by path: an image changed in place needs a fresh cache_dir
    return "pil:" + hashlib.sha1(image.tobytes()).hexdigest()  # in-memory image: key on its pixels


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()[:16]


def _key(config: ModelConfig, records, views, seed, *, stages: int = 0, weights_digest: str | None = None) -> str:
    payload = {
        "backbone": config.backbone,
        "weights": str(config.weights),
        "item": config.item_size,
        "snapshot": list(config.snapshot_size),
        "views": list(views),
        "seed": seed,
        "records": [(_image_key(r[0]), int(r[1]), r[2]) for r in records],
    }
    if stages or weights_digest:  # maps at the input of the last `stages` stages, from these weights
        payload.update({"stages": stages, "weights_digest": weights_digest})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _validate(records) -> list[tuple]:
    out = []
    for rec in records:
        if len(rec) != 3 or rec[2] not in KINDS:
            raise ValueError(f"records must be (image, class_id, kind in {KINDS}), got {rec!r}")
        out.append((rec[0], int(rec[1]), rec[2]))
    return out


def _read_cache(folder: Path) -> FeatureCache | None:
    if not (folder / "meta.json").exists():
        return None
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ("items", "snapshots")}
    for name in ("item_classes", "item_view", "snapshot_classes", "snapshot_view"):
        arrays[name] = np.load(folder / f"{name}.npy")
    return FeatureCache(**arrays)


def _stage_output(embedder, stages: int):
    """The backbone tensor cached for ``stages``: 0 = the final map, n = the input of the last n stages."""
    from ml.backbones import finetune_cut

    if stages == 0:
        return embedder.backbone.output
    return finetune_cut(embedder.backbone, embedder.config.backbone, stages)


def cache_feature_sets(
    embedder,
    records,
    cache_dir,
    *,
    stages: Sequence[int] = (0,),
    extra_stages: Sequence[int] = (),
    item_views: int = 1,
    snapshot_views: int = 1,
    seed: int = 0,
    batch_size: int = 16,
    progress: Progress | None = None,
) -> dict[int, FeatureCache]:
    """Backbone maps for each of ``stages`` (see :func:`cache_features`), computed in one backbone pass.

    ``extra_stages`` are cached too, but only when a pass has to run anyway for ``stages``.
    """
    import keras

    from ml.backbones import preprocess
    from ml.images import augment, letterbox, open_rgb

    records = _validate(records)
    config = embedder.config
    views = (item_views, snapshot_views)
    folders = {}
    for s in dict.fromkeys([*stages, *extra_stages]):
        digest = _weights_digest(keras.Model(embedder.backbone.input, _stage_output(embedder, s)))
        folders[s] = Path(cache_dir) / f"features-{_key(config, records, views, seed, stages=s, weights_digest=digest)}"
    found = {s: _read_cache(folder) for s, folder in folders.items()}
    if all(found[s] is not None for s in stages):
        return {s: found[s] for s in stages}
    todo = [s for s in folders if found[s] is None]
    extractor = keras.Model(embedder.backbone.input, [_stage_output(embedder, s) for s in todo])
    for s in todo:
        folders[s].mkdir(parents=True, exist_ok=True)

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

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind, size, min_area in (("item", (config.item_size,) * 2, 0.6), ("snapshot", config.snapshot_size, 0.8)):
            kind_jobs = jobs[kind]
            name = "items" if kind == "item" else "snapshots"
            chunks = [kind_jobs[i : i + batch_size] for i in range(0, len(kind_jobs), batch_size)]
            pending = pool.map(lambda chunk, s=size, a=min_area: np.stack([prepare(j, s, a) for j in chunk]), chunks)
            outs = None
            row = 0
            for chunk, pixels in zip(chunks, pending, strict=True):
                maps = extractor.predict_on_batch(preprocess(config.backbone, pixels))
                maps = maps if isinstance(maps, (list, tuple)) else [maps]
                if outs is None:
                    outs = [
                        np.lib.format.open_memmap(
                            folders[s] / f"{name}.npy",
                            mode="w+",
                            dtype=np.float16,
                            shape=(len(kind_jobs), *m.shape[1:]),
                        )
                        for s, m in zip(todo, maps, strict=True)
                    ]
                for out, m in zip(outs, maps, strict=True):
                    out[row : row + len(chunk)] = np.asarray(m).astype(np.float16)
                row += len(chunk)
                done_count += len(chunk)
                if progress:
                    rate = done_count / max(time.time() - started, 1e-6)
                    progress(
                        done_count / max(total, 1), f"caching feature maps {done_count}/{total} ({rate:.1f} img/s)"
                    )
            if outs is None:  # no record of this kind: an empty array with the right map shape
                maps = extractor.predict_on_batch(preprocess(config.backbone, np.zeros((1, *size, 3), np.float32)))
                maps = maps if isinstance(maps, (list, tuple)) else [maps]
                for s, m in zip(todo, maps, strict=True):
                    np.save(folders[s] / f"{name}.npy", np.zeros((0, *m.shape[1:]), np.float16))
            else:
                for out in outs:
                    out.flush()
                del outs
            for s in todo:
                np.save(folders[s] / f"{kind}_classes.npy", np.array([j[2] for j in kind_jobs], dtype=np.int64))
                np.save(folders[s] / f"{kind}_view.npy", np.array([j[3] for j in kind_jobs], dtype=np.int64))
    for s in todo:
        (folders[s] / "meta.json").write_text(
            json.dumps({"records": len(records), "stages": s, "created": time.time()})
        )
    return {s: _read_cache(folders[s]) for s in stages}


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
    stages: int = 0,
) -> FeatureCache:
    """Backbone maps of every record and view, cached as .npy files (memory-mapped on reuse).

    ``stages=0``: the final feature map (stage 1's input); ``stages=n``: the map that feeds the
    last n backbone stages (stage 2's input, see :func:`ml.backbones.finetune_cut`).
    """
    return cache_feature_sets(
        embedder,
        records,
        cache_dir,
        stages=(stages,),
        item_views=item_views,
        snapshot_views=snapshot_views,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )[stages]


def _view0(cache: FeatureCache):
    items = np.flatnonzero(cache.item_view == 0)
    snaps = np.flatnonzero(cache.snapshot_view == 0)
    return items, snaps


def descriptors_from_cache(describe, cache: FeatureCache, masks, *, rows_items=None, rows_snaps=None, batch: int = 64):
    """Descriptors of cached maps: items (n, d) and snapshot regions (m, regions, d).

    ``describe(maps, masks=None)``: the head (stage 1) or the trainable backbone part + head (stage 2).
    """
    rows_items, rows_snaps = (rows_items, rows_snaps) if rows_items is not None else _view0(cache)
    from ml.model import _numpy

    items = [
        _numpy(describe(np.asarray(cache.items[rows_items[i : i + batch]], dtype=np.float32)))
        for i in range(0, len(rows_items), batch)
    ]
    snaps = [
        _numpy(describe(np.asarray(cache.snapshots[rows_snaps[i : i + batch]], dtype=np.float32), masks=masks))
        for i in range(0, len(rows_snaps), batch)
    ]
    return np.concatenate(items), np.concatenate(snaps)


def cache_map_score(describe, cache: FeatureCache, masks) -> float:
    """s->i mAP@21 (seed definition, region scoring) over the cache's plain views."""
    from ml.metrics import map_at_k_seed
    from ml.scoring import snapshot_item_scores

    rows_items, rows_snaps = _view0(cache)
    items, snaps = descriptors_from_cache(describe, cache, masks, rows_items=rows_items, rows_snaps=rows_snaps)
    relevant = cache.snapshot_classes[rows_snaps][:, None] == cache.item_classes[rows_items][None, :]
    return 100.0 * map_at_k_seed(snapshot_item_scores(snaps, items), relevant, 21)


def _imprinted_class_weights(describe, cache: FeatureCache, masks, classes: np.ndarray) -> np.ndarray:
    """(classes, d) ArcFace weights: each class's mean descriptor of its plain item views (a class without
    items: of its snapshots' global descriptors), L2-normalised."""
    items, snaps = descriptors_from_cache(describe, cache, masks)
    rows_items, rows_snaps = _view0(cache)
    index = {c: i for i, c in enumerate(classes.tolist())}
    sums = np.zeros((len(classes), items.shape[1] if len(items) else snaps.shape[-1]), np.float64)
    counts = np.zeros(len(classes))
    for row, cls in zip(items, cache.item_classes[rows_items], strict=True):
        sums[index[int(cls)]] += row
        counts[index[int(cls)]] += 1
    for row, cls in zip(snaps[:, 0], cache.snapshot_classes[rows_snaps], strict=True):
        if counts[index[int(cls)]] == 0:  # a class without items: its snapshots' global descriptor
            sums[index[int(cls)]] += row
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


@dataclass
class _Stage:
    """What one training stage optimises: ``describe`` = ``head(trunk(maps))``, ``trunk`` None in stage 1."""

    name: str
    epochs: int
    head_learning_rate: float
    trunk: object = None  # the trainable backbone suffix (a Keras model) or None
    trunk_learning_rate: float = 0.0
    imprint: bool = False  # ArcFace class weights from the class means instead of random
    span: tuple[float, float] = (0.65, 0.98)  # progress fraction covered by the epochs
    prefix: str = ""  # progress message prefix ("" keeps stage 1's "epoch n/N" messages)


def _run_stage(
    embedder,
    stage: _Stage,
    cache: FeatureCache,
    val_cache: FeatureCache | None,
    masks: np.ndarray,
    *,
    options: TrainOptions,
    seed: int,
    rng: np.random.Generator,
    report: Progress,
    out_dir: Path,
) -> tuple[dict, list[dict]]:
    """Train one stage in place (the embedder's head, and its backbone in stage 2); returns (metrics, history)."""
    import keras
    import tensorflow as tf

    from ml.losses import arcface_loss, batch_hard_triplet_loss, smoothed_cross_entropy
    from ml.ops import l2_normalize

    config = embedder.config
    head = embedder.head
    trunk = stage.trunk
    mixed = use_mixed_precision(options.mixed_precision)

    def describe(maps, masks=None, return_branches=False):
        if trunk is not None:
            maps = trunk(maps, training=False)  # BatchNorm in inference mode: frozen statistics
        return head(maps, masks=masks, return_branches=return_branches)

    classes = np.unique(np.concatenate([cache.item_classes, cache.snapshot_classes]))
    class_index = {c: i for i, c in enumerate(classes.tolist())}
    item_rows = {c: np.flatnonzero(cache.item_classes == c) for c in classes.tolist()}
    snap_rows = {c: np.flatnonzero(cache.snapshot_classes == c) for c in classes.tolist()}
    n_classes, dim = len(classes), embedder.dim

    if stage.imprint and config.loss == "arcface":
        initial = _imprinted_class_weights(describe, cache, masks, classes)
    else:
        initial = keras.initializers.GlorotUniform(seed=seed)((n_classes, dim))
    class_weights = keras.Variable(initial, name="arcface_w", dtype="float32")
    aux = keras.layers.Dense(n_classes, name="aux_classifier", dtype="float32") if config.aux_weight > 0 else None
    if aux is not None:
        aux.build((None, config.dim or dim // len(config.pooling)))

    head_vars = list(head.trainable_variables) + (list(aux.trainable_variables) if aux else [])
    if config.loss == "arcface":
        head_vars.append(class_weights)
    groups = [(stage.head_learning_rate, head_vars)]
    if trunk is not None:
        trunk_vars = [
            w
            for layer in trunk.layers
            if not isinstance(layer, keras.layers.BatchNormalization)
            for w in layer.trainable_weights
        ]
        groups.append((stage.trunk_learning_rate, trunk_vars))
    optimizers = []
    for learning_rate, variables in groups:
        optimizer = keras.optimizers.Adam(learning_rate)
        if mixed:
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(variables)  # before tracing: the loss scale must be a variable, not the initial constant
        optimizers.append(optimizer)

    # Which sample kinds exist is decided once, in Python: inside the traced step, batch sizes are unknown.
    has_items, has_snapshots = len(cache.item_classes) > 0, len(cache.snapshot_classes) > 0
    n_regions = masks.shape[0]
    masks_t = tf.constant(masks)
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
        with tf.GradientTape(persistent=len(groups) > 1) as tape:
            embs, firsts, labels = [], [], []
            if has_items:
                ei, fi = describe(xi, return_branches=True)  # (bi, d), (bi, d_branch)
                embs.append(ei)
                firsts.append(fi)
                labels.append(yi)
            if has_snapshots:
                es, fs = describe(xs, masks=masks_t, return_branches=True)  # (bs, regions, d)
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
            emb = tf.concat(embs, 0)  # float32 (the head casts before normalising)
            lab = tf.concat(labels, 0)
            if config.loss == "arcface":
                loss = arcface_loss(emb, class_weights, lab, scale=config.arcface_scale, margin=config.arcface_margin)
            else:
                loss = batch_hard_triplet_loss(emb, lab, margin=config.triplet_margin)
            if aux is not None:
                logits = aux(l2_normalize(tf.cast(tf.concat(firsts, 0), tf.float32)))
                loss += config.aux_weight * smoothed_cross_entropy(
                    logits, lab, label_smoothing=config.label_smoothing, temperature=config.temperature
                )
            scaled = [optimizer.scale_loss(loss) for optimizer in optimizers]  # identity without loss scaling
        for optimizer, (_, variables), scaled_loss in zip(optimizers, groups, scaled, strict=True):
            grads = tape.gradient(scaled_loss, variables)
            optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    models = [embedder.head_model] + ([embedder.backbone] if trunk is not None else [])
    fp16_layers = list(head.projections or []) + (list(trunk.layers) if trunk is not None else [])
    history: list[dict] = []
    best_val, best_weights, bad_checks, epochs_run = -1.0, None, 0, 0
    with mixed_precision_policy(fp16_layers, mixed):
        before = cache_map_score(describe, cache, masks)
        for epoch in range(stage.epochs):
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
            message = f"{stage.prefix}epoch {epochs_run}/{stage.epochs} loss {entry['loss']:.4f}"
            check = epochs_run % options.eval_every == 0 or epochs_run == stage.epochs
            if val_cache is not None and check:
                entry["val_map21"] = cache_map_score(describe, val_cache, masks)
                message += f" val mAP@21 {entry['val_map21']:.2f}"
                if entry["val_map21"] > best_val:
                    best_val, best_weights, bad_checks = entry["val_map21"], [m.get_weights() for m in models], 0
                    _checkpoint(models, out_dir, stage.name, options)
                else:
                    bad_checks += 1
            elif check:  # without val: the latest weights, so a killed run leaves something
                _checkpoint(models, out_dir, stage.name, options)
            history.append(entry)
            lo, hi = stage.span
            report(lo + (hi - lo) * epochs_run / stage.epochs, message)
            if val_cache is not None and bad_checks > options.patience:
                break
        if best_weights is not None:
            for model, weights in zip(models, best_weights, strict=True):
                model.set_weights(weights)
        after = cache_map_score(describe, cache, masks)
    metrics = {
        "train_map21_before": before,
        "train_map21_after": after,
        "epochs": epochs_run,
        "steps": epochs_run * steps_per_epoch,
        "mixed_precision": mixed,
        "gem_p": [float(np.asarray(p.p)) for p in head.pools if hasattr(p, "p")],
    }
    if val_cache is not None:
        metrics["val_map21"] = best_val
    return metrics, history


def _checkpoint(models, out_dir: Path, stage_name: str, options: TrainOptions) -> None:
    if not options.checkpoint:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for model in models:
        model.save_weights(out_dir / f"checkpoint-{stage_name}-{model.name}.weights.h5")


def _remove_checkpoints(out_dir: Path) -> None:
    for path in out_dir.glob("checkpoint-*.weights.h5"):
        path.unlink(missing_ok=True)


def _default_cache_dir(cache_dir) -> Path:
    if cache_dir is None:  # never inside the artifact: the cache is gigabytes
        from ml.backbones import DEFAULT_CACHE_DIR

        return DEFAULT_CACHE_DIR / "features"
    return Path(cache_dir)


def _stage2(embedder, options: TrainOptions, epochs: int, span: tuple[float, float]) -> _Stage:
    from ml.backbones import split_backbone

    _, suffix = split_backbone(embedder.backbone, embedder.config.backbone, options.finetune_stages)
    return _Stage(
        name="stage2",
        epochs=epochs,
        head_learning_rate=options.stage2_learning_rate,
        trunk=suffix,
        trunk_learning_rate=options.backbone_learning_rate,
        imprint=True,
        span=span,
        prefix="stage 2: ",
    )


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
    """Train on ``records`` (stage 1, then stage 2 if ``options.stage2_epochs``), write an artifact to ``out_dir``.

    ``cache_dir`` holds the feature-map cache (default ``~/.cache/lookbook/features``; large:
    about 0.2 MB per item view and 0.6 MB per snapshot view at the default sizes, plus the
    smaller stage-2 input maps); ``backbone_cache_dir`` the converted ImageNet weights. With
    ``val_records`` each stage is checked every ``options.eval_every`` epochs and stops early
    when the val s->i mAP@21 stops improving (the best weights are kept).

    Metrics: ``train_map21_before``/``train_map21_after`` (s->i mAP@21 of the plain training
    views), ``val_map21`` (best, with ``val_records``), ``epochs``, ``seconds``; with stage 2
    the same keys prefixed ``stage2_`` for it.
    """
    import keras

    from ml import artifact
    from ml.model import Embedder, feature_map_shape
    from ml.regions import region_masks

    options = options or TrainOptions()
    report = progress or (lambda fraction, message: None)
    started = time.time()
    records = _validate(records)
    out_dir = Path(out_dir)
    cache_dir = _default_cache_dir(cache_dir)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)

    if embedder is not None and embedder.config != config:
        raise ValueError("embedder.config differs from config")
    embedder = embedder or Embedder.build(config, cache_dir=backbone_cache_dir)
    masks = region_masks(config.regions, *feature_map_shape(embedder.backbone, config.snapshot_size))
    s2 = options.finetune_stages
    stage2 = options.stage2_epochs > 0
    report(0.0, "caching training feature maps")
    caches = cache_feature_sets(
        embedder,
        records,
        cache_dir,
        stages=(0, s2) if stage2 else (0,),
        extra_stages=(s2,) if options.prepare_stage2 else (),
        item_views=options.item_views,
        snapshot_views=options.snapshot_views,
        seed=seed,
        batch_size=options.batch_size,
        progress=lambda f, m: report(0.6 * f, m),
    )
    val_caches = {}
    if val_records:
        val_caches = cache_feature_sets(
            embedder,
            val_records,
            cache_dir,
            stages=(0, s2) if stage2 else (0,),
            seed=seed,
            batch_size=options.batch_size,
            progress=lambda f, m: report(0.6 + 0.05 * f, "val: " + m),
        )

    common = {"options": options, "seed": seed, "rng": rng, "report": report, "out_dir": out_dir}
    span1 = (0.65, 0.8) if stage2 else (0.65, 0.98)
    stage1 = _Stage(name="stage1", epochs=options.epochs, head_learning_rate=options.learning_rate, span=span1)
    metrics, history = _run_stage(embedder, stage1, caches[0], val_caches.get(0), masks, **common)
    info = {"kind": "trained", "options": asdict(options), "seed": seed, "records": len(records), "history": history}
    if stage2:
        metrics2, history2 = _run_stage(
            embedder,
            _stage2(embedder, options, options.stage2_epochs, (0.8, 0.98)),
            caches[s2],
            val_caches.get(s2),
            masks,
            **common,
        )
        metrics.update({f"stage2_{k}": v for k, v in metrics2.items()})
        info.update({"kind": "finetuned", "stage2_history": history2})
    metrics["seconds"] = time.time() - started
    info["classes"] = len(np.unique(caches[0].item_classes.tolist() + caches[0].snapshot_classes.tolist()))
    artifact.save(embedder, out_dir, metrics=metrics, info=info)
    _remove_checkpoints(out_dir)
    final = metrics.get("stage2_train_map21_after", metrics["train_map21_after"])
    report(1.0, f"done: train mAP@21 {metrics['train_map21_before']:.1f} -> {final:.1f}")
    return metrics


def finetune(
    records: Sequence,
    source,
    out_dir,
    *,
    val_records: Sequence | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    options: TrainOptions | None = None,
    cache_dir=None,
) -> dict:
    """Stage 2 only: fine-tune the end of the backbone with the head of ``source``, write an artifact.

    ``source``: a (stage-1) artifact directory or an :class:`~ml.model.Embedder`, which is trained in
    place. Trains ``options.stage2_epochs`` epochs (10 when that is 0). The frozen prefix's maps come
    from the cache a stage-1 run with ``prepare_stage2`` left there, else from one pass over the images.
    Metrics as :func:`train` (without the ``stage2_`` prefix), plus ``source_checksum`` for an artifact.
    """
    import keras

    from ml import artifact
    from ml.model import feature_map_shape
    from ml.regions import region_masks

    options = options or TrainOptions()
    epochs = options.stage2_epochs or 10
    report = progress or (lambda fraction, message: None)
    started = time.time()
    records = _validate(records)
    out_dir = Path(out_dir)
    cache_dir = _default_cache_dir(cache_dir)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    source_checksum = None
    if isinstance(source, (str, Path)):
        source_checksum = artifact.checksum(source)
        embedder = artifact.load(source)
    else:
        embedder = source
    config = embedder.config
    masks = region_masks(config.regions, *feature_map_shape(embedder.backbone, config.snapshot_size))
    s2 = options.finetune_stages
    report(0.0, "caching stage-2 input maps")
    cache = cache_features(
        embedder,
        records,
        cache_dir,
        item_views=options.item_views,
        snapshot_views=options.snapshot_views,
        seed=seed,
        batch_size=options.batch_size,
        progress=lambda f, m: report(0.5 * f, m),
        stages=s2,
    )
    val_cache = None
    if val_records:
        val_cache = cache_features(
            embedder,
            val_records,
            cache_dir,
            seed=seed,
            batch_size=options.batch_size,
            progress=lambda f, m: report(0.5 + 0.05 * f, "val: " + m),
            stages=s2,
        )
    metrics, history = _run_stage(
        embedder,
        _stage2(embedder, options, epochs, (0.55, 0.98)),
        cache,
        val_cache,
        masks,
        options=options,
        seed=seed,
        rng=rng,
        report=report,
        out_dir=out_dir,
    )
    metrics["seconds"] = time.time() - started
    if source_checksum:
        metrics["source_checksum"] = source_checksum
    info = {
        "kind": "finetuned",
        "options": asdict(options),
        "seed": seed,
        "records": len(records),
        "stage2_history": history,
        "source": str(source) if source_checksum else None,
    }
    artifact.save(embedder, out_dir, metrics=metrics, info=info)
    _remove_checkpoints(out_dir)
    report(1.0, f"done: stage 2 train mAP@21 {metrics['train_map21_before']:.1f} -> {metrics['train_map21_after']:.1f}")
    return metrics
