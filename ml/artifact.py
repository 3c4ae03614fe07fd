"""Artifacts: a directory with everything needed to rebuild an :class:`~ml.model.Embedder` exactly.

Layout::

    config.json            {"format": "lookbook-embedder", "format_version": 1,
                            "model": ModelConfig.to_dict(), "files": {name: sha256}, "metrics": {...}}
    backbone.weights.h5    the backbone's weights (self-contained: no download to load)
    head.weights.h5        the CGD head's weights
    parser.weights.h5      optional: the garment parser head (:mod:`ml.parser`); then the
                           manifest has "parser": ParserConfig.to_dict() and lists the file

:func:`checksum` is a SHA-256 over the model config and the weight files' hashes, so two
artifacts with the same checksum embed identically.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from ml.config import BACKBONES, ModelConfig

FORMAT = "lookbook-embedder"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHT_FILES = ("backbone.weights.h5", "head.weights.h5")
PARSER_FILE = "parser.weights.h5"


class ArtifactError(Exception):
    """A missing, corrupt or incompatible artifact."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"artifact {path} does not exist or is not a directory")
    config_path = path / CONFIG_FILE
    if not config_path.exists():
        raise ArtifactError(f"artifact {path} has no {CONFIG_FILE}")
    try:
        manifest = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact {path}: {CONFIG_FILE} is not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"artifact {path}: unsupported format {manifest.get('format')!r} version {manifest.get('format_version')!r}"
        )
    return manifest


def verify(path: str | Path) -> ModelConfig:
    """Check an artifact without loading TensorFlow; returns its config or raises :class:`ArtifactError`."""
    path = Path(path)
    manifest = _read_manifest(path)
    model = manifest.get("model") or {}
    if model.get("backbone") not in BACKBONES:
        raise ArtifactError(f"artifact {path}: unknown backbone {model.get('backbone')!r}")
    try:
        config = ModelConfig.from_dict(model)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact {path}: invalid model config ({exc})") from exc
    files = manifest.get("files") or {}
    names = list(WEIGHT_FILES)
    if manifest.get("parser") is not None:
        from ml.parser import ParserConfig

        try:
            ParserConfig.from_dict(manifest["parser"])
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"artifact {path}: invalid parser config ({exc})") from exc
        names.append(PARSER_FILE)
    elif config.regions == "garments":
        raise ArtifactError(f"artifact {path}: regions 'garments' but no parser")
    for name in names:
        if name not in files:
            raise ArtifactError(f"artifact {path}: manifest lists no checksum for {name}")
        if not (path / name).exists():
            raise ArtifactError(f"artifact {path}: missing file {name}")
        actual = _sha256(path / name)
        if actual != files[name]:
            raise ArtifactError(f"artifact {path}: checksum mismatch for {name} (corrupt or modified)")
    return config


def checksum(path: str | Path) -> str:
    manifest = _read_manifest(Path(path))
    parts = {"model": manifest.get("model"), "files": manifest.get("files")}
    if manifest.get("parser") is not None:  # an artifact without a parser keeps its old checksum
        parts["parser"] = manifest["parser"]
    payload = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def metadata(path: str | Path) -> dict:
    """The manifest's free-form part (metrics, training summary, creation time)."""
    manifest = _read_manifest(Path(path))
    return {k: v for k, v in manifest.items() if k not in ("model", "files")}


def save(embedder, out_dir: str | Path, *, metrics: dict | None = None, info: dict | None = None) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    embedder.backbone.save_weights(out / "backbone.weights.h5")
    embedder.head_model.save_weights(out / "head.weights.h5")
    names = list(WEIGHT_FILES)
    parser = getattr(embedder, "parser", None)
    if parser is not None:
        parser.save_weights(out / PARSER_FILE)
        names.append(PARSER_FILE)
    elif (out / PARSER_FILE).exists():
        (out / PARSER_FILE).unlink()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": embedder.config.to_dict(),
        "files": {name: _sha256(out / name) for name in names},
        "dim": embedder.dim,
        "max_regions": embedder.max_regions,
        **({"parser": embedder.parser_config.to_dict()} if parser is not None else {}),
        "metrics": metrics or {},
        "info": info or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = out / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(out / CONFIG_FILE)
    return out


def load(path: str | Path):
    """Verify and load an artifact into an :class:`~ml.model.Embedder` (no download needed)."""
    from ml.backbones import build_backbone
    from ml.model import Embedder, build_head

    path = Path(path)
    config = verify(path)
    parser_data = _read_manifest(path).get("parser")
    backbone = build_backbone(config.backbone, None)
    head = build_head(config)
    parser = parser_config = None
    try:
        backbone.load_weights(path / "backbone.weights.h5")
        head.load_weights(path / "head.weights.h5")
        if parser_data is not None:
            from ml.parser import ParserConfig, build_parser_head

            parser_config = ParserConfig.from_dict(parser_data)
            parser = build_parser_head(parser_config, config.backbone)
            parser.load_weights(path / PARSER_FILE)
    except Exception as exc:  # noqa: BLE001 - h5/shape errors all mean the same to a caller
        raise ArtifactError(f"artifact {path}: weights do not match the config ({exc})") from exc
    return Embedder(config, backbone, head, parser, parser_config)


def with_parser(
    source: str | Path,
    parser,
    parser_config,
    out_dir: str | Path,
    *,
    regions: str = "garments",
    metrics: dict | None = None,
    info: dict | None = None,
) -> Path:
    """A copy of the artifact at ``source`` with a garment parser added, serving ``regions``."""
    import dataclasses

    from ml.model import Embedder

    base = load(source)
    config = dataclasses.replace(base.config, regions=regions)
    embedder = Embedder(config, base.backbone, base.head_model, parser, parser_config)
    old = metadata(source)
    merged_info = {**(old.get("info") or {}), **(info or {}), "parser_from": str(source)}
    return save(embedder, out_dir, metrics={**(old.get("metrics") or {}), **(metrics or {})}, info=merged_info)


def pretrained_config(backbone: str = "efficientnet_lite2") -> ModelConfig:
    """Off-the-shelf: ImageNet backbone, SPoC on the raw feature map, no projection, no training."""
    from ml.backbones.efficientnet_lite import VARIANTS

    item = VARIANTS[backbone].resolution if backbone in VARIANTS else 224
    snapshot = (round(item * 2.34 / 32) * 32, round(item * 1.6 / 32) * 32)  # ~ (608, 416) for 260
    return ModelConfig(
        backbone=backbone, weights="imagenet", pooling=["spoc"], dim=None, item_size=item, snapshot_size=snapshot
    )


def create_pretrained(
    out_dir: str | Path, *, backbone: str = "efficientnet_lite2", cache_dir: str | Path | None = None
) -> Path:
    """Write an artifact for the off-the-shelf model, so a fresh install can recommend at once."""
    from ml.model import Embedder

    embedder = Embedder.build(pretrained_config(backbone), cache_dir=cache_dir)
    return save(embedder, out_dir, info={"kind": "pretrained", "training": None})


def create_shipped(
    out_dir: str | Path, *, cache_dir: str | Path | None = None, source: str | Path | None = None
) -> Path:
    """Write an artifact for the trained model shipped in the repository (:mod:`ml.shipped`): its trained
    parts over the ImageNet backbone. :class:`ArtifactError` when it is missing, corrupt or not reproduced."""
    from ml import shipped

    try:
        return shipped.unpack(out_dir, source=source or shipped.DEFAULT, cache_dir=cache_dir)
    except shipped.ShippedModelError as exc:
        raise ArtifactError(str(exc)) from exc


def shipped_manifest(source: str | Path | None = None) -> dict:
    """The shipped model's manifest (name, config, recipe, metrics) without TensorFlow."""
    from ml import shipped

    try:
        return shipped.verify(source or shipped.DEFAULT)
    except shipped.ShippedModelError as exc:
        raise ArtifactError(str(exc)) from exc
