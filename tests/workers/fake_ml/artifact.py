from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from tests.workers.fake_ml.config import ModelConfig


class ArtifactError(Exception):
    pass


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(config: ModelConfig, out_dir, *, info: dict | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "weights.bin"
    weights.write_bytes(hashlib.sha256(json.dumps(config.to_dict()).encode()).digest() * 64)
    manifest = {"model": config.to_dict(), "files": {"weights.bin": _sha(weights)}, "info": info or {}}
    (out / "config.json").write_text(json.dumps(manifest, sort_keys=True))
    return out


def _manifest(path) -> dict:
    path = Path(path)
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {path}: unreadable config.json ({exc})") from exc


def verify(path) -> ModelConfig:
    path = Path(path)
    manifest = _manifest(path)
    for name, digest in manifest["files"].items():
        if not (path / name).exists():
            raise ArtifactError(f"artifact {path}: missing file {name}")
        if _sha(path / name) != digest:
            raise ArtifactError(f"artifact {path}: checksum mismatch for {name} (corrupt or modified)")
    return ModelConfig.from_dict(manifest["model"])


def checksum(path) -> str:
    manifest = _manifest(path)
    payload = json.dumps({"model": manifest["model"], "files": manifest["files"]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def create_pretrained(out_dir, *, backbone: str = "fake", cache_dir=None) -> Path:
    return save(ModelConfig(backbone=backbone, mode="hash"), out_dir, info={"kind": "pretrained"})


SHIPPED_NAME = "fake-trained"


def shipped_manifest(source=None) -> dict:
    if os.environ.get("FAKE_ML_SHIPPED_MISSING"):
        raise ArtifactError("shipped model ml/shipped_models/fake: no readable manifest.json")
    config = ModelConfig(mode="color")
    recipe = {"training_counts": {"posts": 600}}
    return {"name": SHIPPED_NAME, "model": config.to_dict(), "recipe": recipe, "metrics": {"s2i_map21_seed": 82.9}}


def create_shipped(out_dir, *, cache_dir=None, source=None) -> Path:
    manifest = shipped_manifest(source)
    return save(ModelConfig.from_dict(manifest["model"]), out_dir, info={"kind": "shipped"})


def load(path) -> FakeEmbedder:
    return FakeEmbedder(verify(path))


def _pixels(image) -> np.ndarray:
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.open(image).convert("RGB")
    return np.asarray(image.convert("RGB").resize((16, 16)), dtype=np.float32) / 255.0  # (16, 16, 3)


class FakeEmbedder:
    def __init__(self, config: ModelConfig):
        self.config = config
        self.dim = config.dim
        self.max_regions = config.max_regions

    def _delay(self) -> None:
        delay = float(os.environ.get("FAKE_ML_EMBED_DELAY_S", "0") or 0)
        if delay:
            time.sleep(delay)

    def _vector(self, pixels: np.ndarray) -> np.ndarray:
        if self.config.mode == "color":
            mean = pixels.reshape(-1, 3).mean(axis=0)  # (3,)
            vector = np.concatenate([mean, 1.0 - mean, mean**2, [0.05, 0.05]])[: self.dim]
        else:
            seed = int.from_bytes(hashlib.sha256(pixels.tobytes()).digest()[:8], "big")
            vector = np.random.default_rng(seed).normal(size=self.dim)
        vector = np.asarray(vector, dtype=np.float32)
        return vector / np.linalg.norm(vector)

    def embed_items(self, images) -> np.ndarray:
        self._delay()
        return np.stack([self._vector(_pixels(i)) for i in images]).astype(np.float32)  # (n, dim)

    def embed_snapshots(self, images) -> np.ndarray:
        self._delay()
        out = np.zeros((len(images), self.max_regions, self.dim), dtype=np.float32)
        for n, image in enumerate(images):
            pixels = _pixels(image)
            out[n, 0] = self._vector(pixels)
            out[n, 1] = self._vector(pixels[:8])  # top half
            # region 2 stays zero: an absent region, not stored
        return out

    def embed_looks(self, images) -> FakeLooks:
        """The snapshot vectors and one garment per photo: "tops", its top half, described by region 1."""
        return FakeLooks(self.embed_snapshots(images))


TOP_HALF = {
    "group": "tops",
    "box": [0.0, 0.0, 1.0, 0.5],
    "outline": [[[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]]],
    "confidence": 0.9,
    "area": 0.5,
    "region": 1,
}


class FakeLooks:
    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    def garment_records(self, i: int) -> list[dict]:
        return [dict(TOP_HALF)]
