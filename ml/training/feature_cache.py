"""Backbone feature maps of every record and view, cached once as memory-mapped .npy files."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.config import ModelConfig
from ml.training.options import KINDS, Progress


@dataclass
class FeatureCache:
    items: np.ndarray  # (item_records * views, h, w, c) float16
    item_classes: np.ndarray  # (item_records * views,)
    item_view: np.ndarray  # view index of each row
    snapshots: np.ndarray  # (snapshot_records * views, hs, ws, c) float16
    snapshot_classes: np.ndarray
    snapshot_view: np.ndarray
    item_categories: np.ndarray | None = None  # (item rows,) garment group id, -1 unknown (not cached on disk)


def _image_key(image) -> str:
    if isinstance(image, (str, Path)):
        return str(image)  # keyed by path: an image changed in place needs a fresh cache_dir
    return "pil:" + hashlib.sha1(image.tobytes()).hexdigest()  # in-memory image: key on its pixels


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()[:16]


def cache_key(config: ModelConfig, records, views, seed, *, stages: int = 0, weights_digest: str | None = None) -> str:
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


def validate_records(records) -> list[tuple]:
    """``(image, class_id, kind)`` triples; a record may carry a fourth field, its category (see
    :func:`record_categories`), which the cache does not depend on."""
    out = []
    for rec in records:
        if len(rec) not in (3, 4) or rec[2] not in KINDS:
            raise ValueError(f"records must be (image, class_id, kind in {KINDS}[, category]), got {rec!r}")
        out.append((rec[0], int(rec[1]), rec[2]))
    return out


def record_categories(records) -> np.ndarray:
    """Each record's category (a garment group id, ``ml.garments.GROUPS``), -1 where it has none."""
    return np.array([int(rec[3]) if len(rec) == 4 and rec[3] is not None else -1 for rec in records], dtype=np.int64)


def item_row_categories(records, item_views: int) -> np.ndarray:
    """The category of every item row of a cache built from ``records`` (item rows: records in order, views inner)."""
    categories = record_categories(records)
    kinds = np.array([rec[2] for rec in records])
    return np.repeat(categories[kinds == "item"], item_views)


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

    from ml.images import augment, letterbox, open_rgb

    records = validate_records(records)
    config = embedder.config
    views = (item_views, snapshot_views)
    folders = {}
    for s in dict.fromkeys([*stages, *extra_stages]):
        digest = _weights_digest(keras.Model(embedder.backbone.input, _stage_output(embedder, s)))
        folders[s] = (
            Path(cache_dir) / f"features-{cache_key(config, records, views, seed, stages=s, weights_digest=digest)}"
        )
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
    done = [0]
    started = time.time()

    def tick(count: int) -> None:
        done[0] += count
        if progress:
            rate = done[0] / max(time.time() - started, 1e-6)
            progress(done[0] / max(total, 1), f"caching feature maps {done[0]}/{total} ({rate:.1f} img/s)")

    def prepare(job, size, min_area):
        index, image, _cls, view = job
        img = open_rgb(image)
        if view > 0:
            img = augment(img, np.random.default_rng([seed, index, view]), min_area=min_area)
        return letterbox(img, size)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind, size, min_area in (("item", (config.item_size,) * 2, 0.6), ("snapshot", config.snapshot_size, 0.8)):
            load = lambda chunk, s=size, a=min_area: np.stack([prepare(j, s, a) for j in chunk])  # noqa: E731
            _write_kind(
                pool, extractor, config, {s: folders[s] for s in todo}, kind, jobs[kind], size, load, batch_size, tick
            )
    for s in todo:
        (folders[s] / "meta.json").write_text(
            json.dumps({"records": len(records), "stages": s, "created": time.time()})
        )
    return {s: _read_cache(folders[s]) for s in stages}


def _write_kind(
    pool, extractor, config, folders: dict, kind: str, kind_jobs, size, load, batch_size: int, tick
) -> None:
    """The maps of one kind's jobs, streamed into one memory-mapped .npy per output (stage)."""
    from ml.backbones import preprocess

    name = "items" if kind == "item" else "snapshots"
    chunks = [kind_jobs[i : i + batch_size] for i in range(0, len(kind_jobs), batch_size)]
    pending = pool.map(load, chunks)
    outs = None
    row = 0
    for chunk, pixels in zip(chunks, pending, strict=True):
        maps = extractor.predict_on_batch(preprocess(config.backbone, pixels))
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        if outs is None:
            outs = [
                np.lib.format.open_memmap(
                    folder / f"{name}.npy", mode="w+", dtype=np.float16, shape=(len(kind_jobs), *m.shape[1:])
                )
                for folder, m in zip(folders.values(), maps, strict=True)
            ]
        for out, m in zip(outs, maps, strict=True):
            out[row : row + len(chunk)] = np.asarray(m).astype(np.float16)
        row += len(chunk)
        tick(len(chunk))
    if outs is None:  # no record of this kind: an empty array with the right map shape
        maps = extractor.predict_on_batch(preprocess(config.backbone, np.zeros((1, *size, 3), np.float32)))
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        for folder, m in zip(folders.values(), maps, strict=True):
            np.save(folder / f"{name}.npy", np.zeros((0, *m.shape[1:]), np.float16))
    else:
        for out in outs:
            out.flush()
        del outs
    for folder in folders.values():
        np.save(folder / f"{kind}_classes.npy", np.array([j[2] for j in kind_jobs], dtype=np.int64))
        np.save(folder / f"{kind}_view.npy", np.array([j[3] for j in kind_jobs], dtype=np.int64))


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
