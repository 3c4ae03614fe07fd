"""``train`` and ``finetune``: one shared preparation, the feature caches, the stages, the artifact."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ml.config import ModelConfig
from ml.training.feature_cache import cache_feature_sets, item_row_categories, validate_records
from ml.training.options import Progress, TrainOptions
from ml.training.stages import Stage, run_stage, stage2


@dataclass
class _Run:
    """What both entry points prepare the same way, in the same order (the seeds before any model is built)."""

    records: list
    item_categories: np.ndarray  # per item row of the train caches (-1: none)
    options: TrainOptions
    report: Progress
    out_dir: Path
    cache_dir: Path
    seed: int
    rng: np.random.Generator
    started: float

    def stage_kwargs(self) -> dict:
        return {
            "options": self.options,
            "seed": self.seed,
            "rng": self.rng,
            "report": self.report,
            "out_dir": self.out_dir,
        }

    def info(self, kind: str, **extra) -> dict:
        return {"kind": kind, "options": asdict(self.options), "seed": self.seed, "records": len(self.records), **extra}


def _prepare(records, out_dir, *, progress, seed, options, cache_dir) -> _Run:
    import keras

    options = options or TrainOptions()
    report = progress or (lambda fraction, message: None)
    started = time.time()
    item_categories = item_row_categories(records, options.item_views)
    records = validate_records(records)
    out_dir = Path(out_dir)
    if cache_dir is None:  # never inside the artifact: the cache is gigabytes
        from ml.backbones import DEFAULT_CACHE_DIR

        cache_dir = DEFAULT_CACHE_DIR / "features"
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    return _Run(records, item_categories, options, report, out_dir, Path(cache_dir), seed, rng, started)


# The windows a snapshot view is described by in training when the model serves garments: training
# pairs each whole snapshot view with its post's items, and the parse of augmented views is not cached.
TRAINING_WINDOWS = ModelConfig().regions


def _masks(embedder) -> np.ndarray:
    from ml.config import GARMENTS
    from ml.model import feature_map_shape
    from ml.regions import region_masks

    config = embedder.config
    scheme = TRAINING_WINDOWS if config.regions == GARMENTS else config.regions
    return region_masks(scheme, *feature_map_shape(embedder.backbone, config.snapshot_size))


def _check_parser_survives(embedder, stage2: bool) -> None:
    """A parser reading the final map is tied to the last stage's weights, which stage 2 changes."""
    parser_config = getattr(embedder, "parser_config", None)
    if stage2 and getattr(embedder, "parser", None) is not None and parser_config.final_map:
        raise ValueError(
            "stage 2 changes the final map this artifact's parser reads: train without stage 2, or retrain the "
            "parser afterwards (python -m ml parse-train)"
        )


def _caches(embedder, run: _Run, val_records, *, stages, extra_stages, share: float, message: str):
    """Train caches (``run.records``, the options' views) and val caches (plain views only) for ``stages``."""
    run.report(0.0, message)
    common = {"seed": run.seed, "batch_size": run.options.batch_size, "stages": stages}
    caches = cache_feature_sets(
        embedder,
        run.records,
        run.cache_dir,
        extra_stages=extra_stages,
        item_views=run.options.item_views,
        snapshot_views=run.options.snapshot_views,
        progress=lambda f, m: run.report(share * f, m),
        **common,
    )
    for cache in caches.values():
        if (run.item_categories >= 0).any():
            cache.item_categories = run.item_categories
    val_caches = {}
    if val_records:
        progress = lambda f, m: run.report(share + 0.05 * f, "val: " + m)  # noqa: E731
        val_caches = cache_feature_sets(embedder, val_records, run.cache_dir, progress=progress, **common)
    return caches, val_caches


def _save(embedder, run: _Run, metrics: dict, info: dict, done: str) -> dict:
    from ml import artifact
    from ml.training.callbacks import remove_checkpoints

    artifact.save(embedder, run.out_dir, metrics=metrics, info=info)
    remove_checkpoints(run.out_dir)
    run.report(1.0, done)
    return metrics


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
    from ml.model import Embedder

    run = _prepare(records, out_dir, progress=progress, seed=seed, options=options, cache_dir=cache_dir)
    options = run.options
    if embedder is not None and embedder.config != config:
        raise ValueError("embedder.config differs from config")
    embedder = embedder or Embedder.build(config, cache_dir=backbone_cache_dir)
    masks = _masks(embedder)
    s2, with_stage2 = options.finetune_stages, options.stage2_epochs > 0
    _check_parser_survives(embedder, with_stage2)
    caches, val_caches = _caches(
        embedder,
        run,
        val_records,
        stages=(0, s2) if with_stage2 else (0,),
        extra_stages=(s2,) if options.prepare_stage2 else (),
        share=0.6,
        message="caching training feature maps",
    )
    span1 = (0.65, 0.8) if with_stage2 else (0.65, 0.98)
    stage1 = Stage(name="stage1", epochs=options.epochs, head_learning_rate=options.learning_rate, span=span1)
    metrics, history = run_stage(embedder, stage1, caches[0], val_caches.get(0), masks, **run.stage_kwargs())
    info = run.info("trained", history=history)
    if with_stage2:
        stage = stage2(embedder, options, options.stage2_epochs, (0.8, 0.98))
        metrics2, history2 = run_stage(embedder, stage, caches[s2], val_caches.get(s2), masks, **run.stage_kwargs())
        metrics.update({f"stage2_{k}": v for k, v in metrics2.items()})
        info.update({"kind": "finetuned", "stage2_history": history2})
    metrics["seconds"] = time.time() - run.started
    info["classes"] = len(np.unique(caches[0].item_classes.tolist() + caches[0].snapshot_classes.tolist()))
    final = metrics.get("stage2_train_map21_after", metrics["train_map21_after"])
    return _save(embedder, run, metrics, info, f"done: train mAP@21 {metrics['train_map21_before']:.1f} -> {final:.1f}")


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
    from ml import artifact

    run = _prepare(records, out_dir, progress=progress, seed=seed, options=options, cache_dir=cache_dir)
    options = run.options
    source_checksum = None
    if isinstance(source, (str, Path)):
        source_checksum = artifact.checksum(source)
        embedder = artifact.load(source)
    else:
        embedder = source
    _check_parser_survives(embedder, True)
    masks = _masks(embedder)
    s2 = options.finetune_stages
    caches, val_caches = _caches(
        embedder, run, val_records, stages=(s2,), extra_stages=(), share=0.5, message="caching stage-2 input maps"
    )
    stage = stage2(embedder, options, options.stage2_epochs or 10, (0.55, 0.98))
    metrics, history = run_stage(embedder, stage, caches[s2], val_caches.get(s2), masks, **run.stage_kwargs())
    metrics["seconds"] = time.time() - run.started
    if source_checksum:
        metrics["source_checksum"] = source_checksum
    info = run.info("finetuned", stage2_history=history, source=str(source) if source_checksum else None)
    done = f"done: stage 2 train mAP@21 {metrics['train_map21_before']:.1f} -> {metrics['train_map21_after']:.1f}"
    return _save(embedder, run, metrics, info, done)
