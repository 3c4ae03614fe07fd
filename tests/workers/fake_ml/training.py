from __future__ import annotations

import os
import time
from dataclasses import dataclass

from tests.workers.fake_ml import artifact
from tests.workers.fake_ml.config import ModelConfig


@dataclass
class TrainOptions:
    epochs: int = 1


def train(
    records, config: ModelConfig, out_dir, *, val_records=None, progress=None, seed=0, options=None, embedder=None, **_
):
    if not records:
        raise ValueError("no training records")
    classes = {class_id for _, class_id, _ in records}
    kinds = {kind for _, _, kind in records}
    if kinds - {"snapshot", "item"}:
        raise ValueError(f"unknown record kinds {kinds}")
    seconds = float(os.environ.get("FAKE_ML_TRAIN_SECONDS", "0") or 0)  # a long run, spread over the epochs
    for step in range(3):
        time.sleep(seconds / 3)
        if progress:
            progress((step + 1) / 3, f"epoch {step + 1}/3")
    if embedder is not None and embedder.config != config:
        raise ValueError("embedder.config differs from config")
    config.mode = os.environ.get("FAKE_ML_TRAIN_MODE", "color")
    artifact.save(config, out_dir, info={"kind": "trained", "warm_start": embedder is not None})
    return {"classes": len(classes), "records": len(records), "val_records": len(val_records or [])}
