"""One training stage: what it optimises (:class:`Stage`) and its loop over the trainer's ``train_step``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.training.feature_cache import FeatureCache
from ml.training.options import Progress, TrainOptions, mixed_precision_policy, use_mixed_precision


@dataclass
class Stage:
    """What one training stage optimises: ``describe`` = ``head(trunk(maps))``, ``trunk`` None in stage 1."""

    name: str
    epochs: int
    head_learning_rate: float
    trunk: object = None  # the trainable backbone suffix (a Keras model) or None
    trunk_learning_rate: float = 0.0
    imprint: bool = False  # ArcFace class weights from the class means instead of random
    span: tuple[float, float] = (0.65, 0.98)  # progress fraction covered by the epochs
    prefix: str = ""  # progress message prefix ("" keeps stage 1's "epoch n/N" messages)


def stage2(embedder, options: TrainOptions, epochs: int, span: tuple[float, float]) -> Stage:
    from ml.backbones import split_backbone

    _, suffix = split_backbone(embedder.backbone, embedder.config.backbone, options.finetune_stages)
    return Stage(
        name="stage2",
        epochs=epochs,
        head_learning_rate=options.stage2_learning_rate,
        trunk=suffix,
        trunk_learning_rate=options.backbone_learning_rate,
        imprint=True,
        span=span,
        prefix="stage 2: ",
    )


def run_stage(
    embedder,
    stage: Stage,
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
    """Train one stage in place (the embedder's head, and its backbone in stage 2); returns (metrics, history).

    An explicit loop over ``StageTrainer.train_step`` with the callbacks, rather than ``fit``: ``fit`` draws
    batches ahead (tensor-spec inference, symbolic build), which would change the sampler's RNG order.
    """
    import keras
    import tensorflow as tf

    from ml.training.callbacks import StageCheckpoint, StageProgress, ValidationCheck
    from ml.training.descriptors import cache_map_score
    from ml.training.sampling import PKSampler
    from ml.training.trainer import StageTrainer

    mixed = use_mixed_precision(options.mixed_precision)
    trainer = StageTrainer(embedder, stage, cache, masks, seed=seed, mixed=mixed)
    sampler = PKSampler(cache, trainer.classes, options, rng)
    models = [embedder.head_model] + ([embedder.backbone] if stage.trunk is not None else [])
    every, with_val = options.eval_every, val_cache is not None
    progress = StageProgress(report, stage.prefix, stage.epochs, stage.span)
    callbacks = [ValidationCheck(val_cache, masks, every, stage.epochs)] if with_val else []
    if options.checkpoint:
        callbacks.append(
            StageCheckpoint(models, out_dir, stage.name, every=every, epochs=stage.epochs, with_val=with_val)
        )
    early = None
    if with_val:  # ours stopped after `patience` checks without improvement *plus one*
        early = keras.callbacks.EarlyStopping(
            "val_map21", patience=options.patience + 1, mode="max", restore_best_weights=True
        )
        callbacks.append(early)
    callback_list = keras.callbacks.CallbackList([*callbacks, progress], model=trainer)
    step = tf.function(trainer.train_step, reduce_retracing=True)
    fp16_layers = list(embedder.head.projections or []) + (list(stage.trunk.layers) if stage.trunk is not None else [])
    epochs_run = 0
    with mixed_precision_policy(fp16_layers, mixed):
        before = cache_map_score(trainer.describe, cache, masks)
        trainer.stop_training = False
        callback_list.on_train_begin()
        for epoch in range(stage.epochs):
            callback_list.on_epoch_begin(epoch)
            losses = []
            for index in range(len(sampler)):
                xi, yi, xs, ys, ci = sampler[index]
                batch = (
                    tf.constant(xi),
                    tf.constant(yi, tf.int32),
                    tf.constant(xs),
                    tf.constant(ys, tf.int32),
                    tf.constant(ci, tf.int32),
                )
                losses.append(float(step(batch)["loss"]))
            epochs_run = epoch + 1
            with warnings.catch_warnings():  # the val metric is absent between checks, by design
                warnings.filterwarnings("ignore", message="Early stopping conditioned on metric")
                callback_list.on_epoch_end(epoch, {"loss": float(np.mean(losses))})
            if trainer.stop_training:
                break
        callback_list.on_train_end()  # EarlyStopping puts the best checked weights back
        after = cache_map_score(trainer.describe, cache, masks)
    metrics = {
        "train_map21_before": before,
        "train_map21_after": after,
        "epochs": epochs_run,
        "steps": epochs_run * len(sampler),
        "mixed_precision": mixed,
        "gem_p": [float(np.asarray(p.p)) for p in embedder.head.pools if hasattr(p, "p")],
    }
    if with_val:
        metrics["val_map21"] = float(early.best)
    return metrics, progress.history
