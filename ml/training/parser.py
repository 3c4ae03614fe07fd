"""Training the garment parser head on cached backbone taps of CCP's pixel-labelled photos.

Each photo is run through the frozen backbone once per view (view 0 plain; view 1 flipped and
colour-jittered; further views rescaled by 0.55..1.25 at a random place, randomly flipped) and
its taps (strides 8, 16, 32) are cached as float16 beside the group labels at stride 4. Training
draws random crops aligned to the stride-32 grid (so the three taps and the labels stay
aligned), with per-pixel cross-entropy weighted by inverse square-root class frequency
(rare groups such as belts count more, without swamping the common ones). The val split,
when given, is only measured (pixel accuracy, mIoU), never selected on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from ml.garments import GROUPS, confusion, group_lookup, iou_per_class, mean_iou, pixel_accuracy
from ml.images import letterbox, letterbox_labels
from ml.parser import ParserConfig, build_parser_head, parser_inputs, tapped_backbone, taps_digest
from ml.training.options import MIXED_PRECISION, Progress, use_mixed_precision

LABEL_STRIDE = 4


@dataclass
class ParserOptions:
    views: int = 3
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 2e-3
    crop_cells: tuple[int, int] = (16, 12)  # random training crop, in stride-32 cells (h, w)
    class_weight_power: float = 0.5  # weight = (median frequency / frequency) ** power, clipped
    backbone_batch: int = 8
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        if self.views < 1 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError("views, epochs and batch_size must be >= 1")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}")
        self.crop_cells = tuple(int(v) for v in self.crop_cells)


@dataclass
class ParserCache:
    tap8: np.ndarray  # (n, h/8, w/8, c8) float16
    tap16: np.ndarray
    tap32: np.ndarray
    labels: np.ndarray  # (n, h/4, w/4) uint8 group ids


def ccp_parse_records(ccp_root: str | Path, split: str, *, limit: int | None = None) -> list[tuple[Path, Path]]:
    """(photo, pixel annotation) pairs of a CCP split."""
    from ml.datasets import ccp

    root = Path(ccp_root)
    return [
        (root / "photos" / f"{i:04d}.jpg", root / "annotations" / "pixel-level" / f"{i:04d}.mat")
        for i in ccp.post_ids(root, split)[:limit]
    ]


def _view(photo: Image.Image, groups: np.ndarray, size, view: int, rng: np.random.Generator):
    """(frame uint8 (h, w, 3), group labels (h, w)) of one augmented view, letterboxed to ``size``."""
    frame, labels = letterbox(photo, size), letterbox_labels(groups, size)
    if view == 0:
        return frame, labels
    if view == 1:
        frame, labels = frame[:, ::-1], labels[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(frame))
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhance(img).enhance(rng.uniform(0.75, 1.25))
        return np.asarray(img), np.ascontiguousarray(labels)
    height, width = size
    scale = rng.uniform(0.55, 1.25)
    new_h, new_w = max(8, round(height * scale)), max(8, round(width * scale))
    img = Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR)
    lab = Image.fromarray(labels).resize((new_w, new_h), Image.NEAREST)
    out_img = np.full((height, width, 3), 255, dtype=np.uint8)
    out_lab = np.zeros((height, width), dtype=np.uint8)
    # place the rescaled frame at a random offset (negative: crop into it)
    y = int(rng.integers(min(0, height - new_h), max(0, height - new_h) + 1))
    x = int(rng.integers(min(0, width - new_w), max(0, width - new_w) + 1))
    src_y, src_x, dst_y, dst_x = max(0, -y), max(0, -x), max(0, y), max(0, x)
    h, w = min(new_h - src_y, height - dst_y), min(new_w - src_x, width - dst_x)
    out_img[dst_y : dst_y + h, dst_x : dst_x + w] = np.asarray(img)[src_y : src_y + h, src_x : src_x + w]
    out_lab[dst_y : dst_y + h, dst_x : dst_x + w] = np.asarray(lab)[src_y : src_y + h, src_x : src_x + w]
    if rng.random() < 0.5:
        out_img, out_lab = out_img[:, ::-1], out_lab[:, ::-1]
    return np.ascontiguousarray(out_img), np.ascontiguousarray(out_lab)


def _cache_key(backbone_name, weights_digest, size, records, views, seed, final_map=False) -> str:
    payload = {
        "final_map": final_map,
        "backbone": backbone_name,
        "weights": weights_digest,
        "size": list(size),
        "records": [str(p) for p, _ in records],
        "views": views,
        "seed": seed,
        "groups": list(GROUPS),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cache_parser_features(
    embedder,
    records,
    *,
    views: int,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
    label: str = "parser features",
    parser_config: ParserConfig | None = None,
) -> ParserCache:
    """The taps and stride-4 group labels of every record and view (cached on disk under ``cache_dir``)."""
    from ml.backbones import preprocess
    from ml.datasets.ccp import label_names, load_label_map

    config = embedder.config
    parser_config = parser_config or ParserConfig()
    final_map = parser_config.final_map
    size = tuple(config.snapshot_size)
    if size[0] % 32 or size[1] % 32:
        raise ValueError("the parser needs a snapshot_size that is a multiple of 32")
    path = None
    if cache_dir is not None:
        digest = taps_digest(embedder.backbone, config.backbone, final_map=final_map)
        key = _cache_key(config.backbone, digest, size, records, views, seed, final_map)
        path = Path(cache_dir) / f"parser-{key}.npz"
        if path.exists():
            with np.load(path) as data:
                return ParserCache(data["tap8"], data["tap16"], data["tap32"], data["labels"])
    tapped = tapped_backbone(embedder.backbone, config.backbone)
    lookup_cache: dict[Path, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    jobs = [(rec, view) for view in range(views) for rec in records]
    h8, w8 = size[0] // 8, size[1] // 8
    taps = [None, None, None]
    labels = np.zeros((len(jobs), size[0] // LABEL_STRIDE, size[1] // LABEL_STRIDE), dtype=np.uint8)
    started = time.time()
    for start in range(0, len(jobs), batch_size):
        frames = []
        for j, ((photo_path, annotation), view) in enumerate(jobs[start : start + batch_size]):
            root = Path(annotation).parents[2]
            if root not in lookup_cache:
                lookup_cache[root] = group_lookup(label_names(root))
            groups = lookup_cache[root][load_label_map(annotation)]
            with Image.open(photo_path) as img:
                photo = img.convert("RGB")
            frame, lab = _view(photo, groups, size, view, rng)
            frames.append(frame)
            labels[start + j] = lab[LABEL_STRIDE // 2 :: LABEL_STRIDE, LABEL_STRIDE // 2 :: LABEL_STRIDE]
        outs = parser_inputs(tapped.predict_on_batch(preprocess(config.backbone, np.stack(frames))), parser_config)
        for t in range(3):
            if taps[t] is None:
                shape = (len(jobs), h8 // 2**t, w8 // 2**t, outs[t].shape[-1])
                taps[t] = np.zeros(shape, dtype=np.float16)
            taps[t][start : start + len(frames)] = np.asarray(outs[t], dtype=np.float16)
        if progress:
            done = start + len(frames)
            rate = done / max(time.time() - started, 1e-6)
            left = (len(jobs) - done) / rate
            progress(done / len(jobs), f"{label} {done}/{len(jobs)} ({rate:.1f} img/s, {left:.0f}s left)")
    cache = ParserCache(taps[0], taps[1], taps[2], labels)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, tap8=cache.tap8, tap16=cache.tap16, tap32=cache.tap32, labels=cache.labels)
        tmp.replace(path)
    return cache


def class_weights(labels: np.ndarray, classes: int, power: float) -> np.ndarray:
    counts = np.bincount(labels.ravel(), minlength=classes).astype(np.float64)
    freq = counts / counts.sum()
    present = freq > 0
    median = np.median(freq[present])
    weights = np.ones(classes)
    weights[present] = (median / freq[present]) ** power
    return np.clip(weights, 0.05, 10.0).astype(np.float32)


def _batches(cache: ParserCache, options: ParserOptions, weights: np.ndarray, rng: np.random.Generator):
    """One epoch of aligned random crops: ([tap8, tap16, tap32], labels, per-pixel weights)."""
    ch, cw = options.crop_cells
    n, h32, w32 = cache.tap32.shape[:3]
    ch, cw = min(ch, h32), min(cw, w32)
    order = rng.permutation(n)
    for start in range(0, n - options.batch_size + 1, options.batch_size):
        idx = order[start : start + options.batch_size]
        ys = rng.integers(0, h32 - ch + 1, size=len(idx))
        xs = rng.integers(0, w32 - cw + 1, size=len(idx))
        picks = list(zip(idx, ys, xs, strict=True))
        t8 = np.stack([cache.tap8[i, 4 * y : 4 * (y + ch), 4 * x : 4 * (x + cw)] for i, y, x in picks])
        t16 = np.stack([cache.tap16[i, 2 * y : 2 * (y + ch), 2 * x : 2 * (x + cw)] for i, y, x in picks])
        t32 = np.stack([cache.tap32[i, y : y + ch, x : x + cw] for i, y, x in picks])
        lab = np.stack([cache.labels[i, 8 * y : 8 * (y + ch), 8 * x : 8 * (x + cw)] for i, y, x in picks])
        yield [t8.astype(np.float32), t16.astype(np.float32), t32.astype(np.float32)], lab, weights[lab]


def measure_parser(head, cache: ParserCache, classes: int, batch_size: int = 16) -> dict:
    """Pixel accuracy, mIoU over the garment groups and per-group IoU (percent) at stride 4 on view 0 frames."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for start in range(0, len(cache.labels), batch_size):
        sl = slice(start, start + batch_size)
        logits = head.predict_on_batch([t[sl].astype(np.float32) for t in (cache.tap8, cache.tap16, cache.tap32)])
        matrix += confusion(np.argmax(np.asarray(logits), axis=-1), cache.labels[sl], classes)
    ious = iou_per_class(matrix)
    return {
        "pixel_accuracy": 100 * pixel_accuracy(matrix),
        "miou": 100 * mean_iou(matrix),
        "iou": {GROUPS[c]: (None if np.isnan(ious[c]) else round(100 * float(ious[c]), 2)) for c in range(classes)},
    }


def train_parser(
    embedder,
    records,
    *,
    config: ParserConfig | None = None,
    options: ParserOptions | None = None,
    val_records=None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
):
    """Train a parser head for ``embedder``'s backbone; returns (head model, metrics dict)."""
    import keras

    from ml.training.options import mixed_precision_policy

    config = config or ParserConfig()
    options = options or ParserOptions()
    say = progress or (lambda f, m: None)
    keras.utils.set_random_seed(seed)
    cache = cache_parser_features(
        embedder,
        records,
        views=options.views,
        seed=seed,
        cache_dir=cache_dir,
        batch_size=options.backbone_batch,
        progress=lambda f, m: say(0.25 * f, m),
        parser_config=config,
    )
    val = None
    if val_records:
        val = cache_parser_features(
            embedder,
            val_records,
            views=1,
            seed=seed,
            cache_dir=cache_dir,
            progress=lambda f, m: say(0.25, "val " + m),
            parser_config=config,
        )
    weights = class_weights(cache.labels, config.classes, options.class_weight_power)
    mixed = use_mixed_precision(options.mixed_precision)
    head = build_parser_head(config, embedder.config.backbone)
    steps = options.epochs * (len(cache.labels) // options.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, decay_steps=max(steps, 1))
    optimizer = keras.optimizers.Adam(schedule)
    if mixed:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    rng = np.random.default_rng(seed)
    history = []
    started = time.time()
    step = 0
    # float16 compute in the decoder under mixed precision; the logits' upsampling stays float32
    with mixed_precision_policy([layer for layer in head.layers if layer.name != "up4"], mixed):
        head.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for epoch in range(options.epochs):
            losses = []
            for inputs, labels, pixel_weights in _batches(cache, options, weights, rng):
                losses.append(float(head.train_on_batch(inputs, labels, sample_weight=pixel_weights)))
                step += 1
            history.append(float(np.mean(losses)))
            rate = step / (time.time() - started)
            say(
                0.25 + 0.7 * (epoch + 1) / options.epochs,
                f"parser: epoch {epoch + 1}/{options.epochs} loss {history[-1]:.4f} "
                f"({(steps - step) / max(rate, 1e-6):.0f}s left)",
            )
    metrics: dict = {"loss": history, "epochs": options.epochs, "train_views": int(len(cache.labels))}
    train_plain = ParserCache(*(a[: len(records)] for a in (cache.tap8, cache.tap16, cache.tap32, cache.labels)))
    metrics["train"] = measure_parser(head, train_plain, config.classes)
    if val is not None:
        metrics["val"] = measure_parser(head, val, config.classes)
    metrics["seconds"] = round(time.time() - started, 1)
    say(1.0, f"parser: trained, train mIoU {metrics['train']['miou']:.1f}")
    return head, metrics
