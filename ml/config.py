"""The explicit configuration of a descriptor model and its preprocessing (saved in every artifact)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BACKBONES = ("efficientnet_lite0", "efficientnet_lite2", "resnet50")
POOLINGS = ("spoc", "gem", "mac")
GARMENTS = "garments"  # the region scheme of a parser's garments (ml.parser), not fixed windows
GARMENT_DESCRIPTORS = ("crop", "pooled", "both")
LOSSES = ("arcface", "triplet")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and its preprocessing exactly.

    ``dim`` is the projection size of each pooling branch; ``None`` means no projection
    (the raw pooled backbone channels, as in the off-the-shelf model). The descriptor is
    the L2-normalised concatenation of the branches.

    Items are resized (aspect kept, white padding) to ``item_size`` squared; snapshots to
    ``snapshot_size`` = (height, width), larger, because a garment is small in a whole-body
    photo. ``regions`` names the region scheme (:mod:`ml.regions`) whose windows over the
    snapshot feature map give the per-snapshot descriptors; region 0 is always the whole map.
    ``regions="garments"`` (needs an artifact with a parser) describes instead each garment the
    parser finds, at most ``max_garments``: ``garment_descriptor`` "crop" embeds its masked crop on
    white as an item, "pooled" pools the snapshot's own feature map under its mask, "both" gives two
    rows per garment.
    """

    backbone: str = "efficientnet_lite2"
    weights: str | None = "imagenet"
    pooling: list[str] = field(default_factory=lambda: ["spoc", "gem"])
    dim: int | None = 512
    gem_p: float = 3.0
    item_size: int = 260
    snapshot_size: tuple[int, int] = (608, 416)
    regions: str = "multiscale32"
    max_garments: int = 11
    garment_descriptor: str = "crop"
    # training
    loss: str = "arcface"
    arcface_scale: float = 16.0
    arcface_margin: float = 0.2
    triplet_margin: float = 0.1
    aux_weight: float = 0.0
    # garment-group classification of item descriptors (records with a category; ml.garments.GROUPS ids),
    # smoothed and temperature-scaled like the auxiliary loss: teaches which garment, not only which post
    category_weight: float = 0.0
    label_smoothing: float = 0.1
    temperature: float = 0.5

    def __post_init__(self) -> None:
        self.snapshot_size = tuple(int(v) for v in self.snapshot_size)
        self.pooling = list(self.pooling)
        self.validate()

    def validate(self) -> None:
        from ml.regions import REGION_SCHEMES

        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose one of {BACKBONES}")
        bad = [p for p in self.pooling if p not in POOLINGS]
        if not self.pooling or bad:
            raise ValueError(f"pooling must be a non-empty list from {POOLINGS}, got {self.pooling}")
        if self.dim is not None and self.dim < 1:
            raise ValueError("dim must be positive or None")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {LOSSES}")
        if self.garment_descriptor not in GARMENT_DESCRIPTORS:
            raise ValueError(f"garment_descriptor must be one of {GARMENT_DESCRIPTORS}")
        if self.max_rows(GARMENTS) > 32 or self.max_garments < 0:
            raise ValueError("max_garments must be >= 0 and give at most 32 rows per snapshot")
        if self.regions != GARMENTS and self.regions not in REGION_SCHEMES:
            raise ValueError(f"unknown region scheme {self.regions!r}; choose one of {sorted(REGION_SCHEMES)}")
        if len(self.snapshot_size) != 2 or min(self.snapshot_size) < 32 or self.item_size < 32:
            raise ValueError("item_size and snapshot_size (height, width) must be at least 32 px")

    @property
    def descriptor_dim(self) -> int:
        from ml.backbones import feature_channels

        per_branch = self.dim if self.dim is not None else feature_channels(self.backbone)
        return per_branch * len(self.pooling)

    @property
    def max_regions(self) -> int:
        return self.max_rows(self.regions)

    def max_rows(self, scheme: str) -> int:
        """Vectors per snapshot under ``scheme``: the windows, or 1 + rows per garment x ``max_garments``."""
        from ml.regions import REGION_SCHEMES

        if scheme == GARMENTS:
            return 1 + self.max_garments * (2 if self.garment_descriptor == "both" else 1)
        return len(REGION_SCHEMES[scheme])

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["snapshot_size"] = list(self.snapshot_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return from_known_keys(cls, data, "config")


def from_known_keys(cls, data: dict[str, Any], what: str):
    """``cls(**data)`` for a dataclass, refusing keys it does not have (a config saved by other code)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
    return cls(**data)
