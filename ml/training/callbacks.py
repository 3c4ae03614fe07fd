"""The stage loop's callbacks: the periodic val check, checkpoints and progress/history."""

from __future__ import annotations

from pathlib import Path

import keras

from ml.training.descriptors import cache_map_score


def is_check_epoch(epochs_run: int, every: int, epochs: int) -> bool:
    return epochs_run % every == 0 or epochs_run == epochs


class ValidationCheck(keras.callbacks.Callback):
    """Adds ``val_map21`` (s->i mAP@21 of the val cache) to the epoch logs every ``every`` epochs and at the end;
    ``EarlyStopping`` skips the epochs without it, so its patience counts checks."""

    def __init__(self, val_cache, masks, every: int, epochs: int):
        super().__init__()
        self.val_cache, self.masks, self.every, self.epochs = val_cache, masks, every, epochs

    def on_epoch_end(self, epoch, logs=None):
        if is_check_epoch(epoch + 1, self.every, self.epochs):
            logs["val_map21"] = cache_map_score(self.model.describe, self.val_cache, self.masks)


class StageCheckpoint(keras.callbacks.Callback):
    """On check epochs, the embedder's models as ``checkpoint-<stage>-<model>.weights.h5``: with val only when
    it improved, without val always (so a killed run leaves something).

    ``ModelCheckpoint`` saves only the model it is attached to (here the stage trainer, not the embedder's
    own head and backbone) and on a batch or every-epoch cadence, not on these check epochs."""

    def __init__(self, models, out_dir: Path, stage_name: str, *, every: int, epochs: int, with_val: bool):
        super().__init__()
        self.models, self.out_dir, self.stage_name = models, out_dir, stage_name
        self.every, self.epochs, self.with_val = every, epochs, with_val
        self.best = -1.0

    def on_epoch_end(self, epoch, logs=None):
        if not is_check_epoch(epoch + 1, self.every, self.epochs):
            return
        if self.with_val:
            if logs["val_map21"] <= self.best:
                return
            self.best = logs["val_map21"]
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for model in self.models:
            model.save_weights(self.out_dir / f"checkpoint-{self.stage_name}-{model.name}.weights.h5")


class StageProgress(keras.callbacks.Callback):
    """One history entry and one progress message per epoch (``prefix`` "epoch n/N loss ... val mAP@21 ...")."""

    def __init__(self, report, prefix: str, epochs: int, span: tuple[float, float]):
        super().__init__()
        self.report, self.prefix, self.epochs, self.span = report, prefix, epochs, span
        self.history: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, "loss": logs["loss"]}
        message = f"{self.prefix}epoch {epoch + 1}/{self.epochs} loss {entry['loss']:.4f}"
        if "val_map21" in logs:
            entry["val_map21"] = logs["val_map21"]
            message += f" val mAP@21 {entry['val_map21']:.2f}"
        self.history.append(entry)
        lo, hi = self.span
        self.report(lo + (hi - lo) * (epoch + 1) / self.epochs, message)


def remove_checkpoints(out_dir: Path) -> None:
    for path in out_dir.glob("checkpoint-*.weights.h5"):
        path.unlink(missing_ok=True)
