"""The descriptor model: backbone feature map -> CGD head -> L2-normalised descriptors.

:class:`Embedder` turns images into descriptors: one per item, ``max_regions`` per
snapshot (row 0 = the whole snapshot). A snapshot's other rows are fixed windows
(:mod:`ml.regions`) or, with a garment parser (:mod:`ml.parser`) and ``regions="garments"``,
one per garment found in it (:meth:`Embedder.embed_looks` returns the garments with them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.config import GARMENTS, ModelConfig
from ml.garments import Garment, crop_on_white, garment_record, garments_from_parse
from ml.images import letterbox, letterbox_geometry, letterbox_labels, load_batch, open_rgb
from ml.parser import ParserConfig
from ml.regions import region_masks

logger = logging.getLogger(__name__)


def _numpy(tensor) -> np.ndarray:
    from keras import ops

    return ops.convert_to_numpy(tensor)


def build_head(config: ModelConfig):
    """A Keras model (batch, h, w, c) -> (batch, d) holding the CGD head (saved with the artifact)."""
    import keras

    from ml.backbones import feature_channels
    from ml.layers import CGDHead

    inputs = keras.Input((None, None, feature_channels(config.backbone)), name="feature_map")
    head = CGDHead(config.pooling, config.dim, config.gem_p, name="cgd")
    return keras.Model(inputs, head(inputs), name="descriptor_head")


def feature_map_shape(backbone, size: tuple[int, int]) -> tuple[int, int]:
    shape = backbone.compute_output_shape((1, size[0], size[1], 3))
    return int(shape[1]), int(shape[2])


@dataclass
class Looks:
    """Snapshots as :meth:`Embedder.embed_looks` describes them.

    ``vectors`` (n, rows, dim) float32, L2-normalised; row 0 is the whole photo. Under the
    garment scheme row 1 + g describes ``garments[i][g]`` ("both": rows 1 + 2g crop, 2 + 2g
    pooled) and the rows past ``counts[i]`` repeat row 0, so the max-over-rows rule is
    unchanged by the padding; under a window scheme every row is a window and ``garments`` is
    empty. Store the first ``counts[i]`` rows of snapshot i. ``sizes[i]`` is photo i's (height,
    width), the frame of its garments' boxes; ``rows_per_garment`` 2 under "both", else 1.
    """

    vectors: np.ndarray
    counts: np.ndarray
    garments: list[list[Garment]]
    scheme: str
    sizes: list[tuple[int, int]] = field(default_factory=list)
    rows_per_garment: int = 1

    def garment_region(self, g: int) -> int:
        """The row describing garment ``g`` (its crop row under "both")."""
        return 1 + self.rows_per_garment * g

    def garment_records(self, i: int) -> list[dict]:
        """Photo i's garments as :func:`ml.garments.garment_record` dicts, each with its ``region``."""
        return [
            {**garment_record(garment, self.sizes[i]), "region": self.garment_region(g)}
            for g, garment in enumerate(self.garments[i])
        ]


class Embedder:
    """Images -> descriptors with a fixed backbone + head and the config's preprocessing.

    ``parser`` (optional): the garment parser head (:func:`ml.parser.build_parser_head`) and its
    ``parser_config``; with it, one backbone pass gives the parse and the descriptors.
    """

    def __init__(self, config: ModelConfig, backbone, head_model, parser=None, parser_config=None):
        from ml.layers import CGDHead

        self.config = config
        self.backbone = backbone
        self.head_model = head_model
        self.head: CGDHead = head_model.get_layer("cgd")
        self.parser = parser
        self.parser_config = parser_config or (ParserConfig() if parser is not None else None)
        if config.regions == GARMENTS and parser is None:
            raise ValueError("regions='garments' needs a garment parser")
        self.dim = int(config.descriptor_dim)
        self.max_regions = int(config.max_regions)
        self._map_shape = feature_map_shape(backbone, config.snapshot_size)
        self._window_masks: dict[str, np.ndarray] = {}
        self._tapped = None
        self._onnx_dir: Path | None = None  # set by use_onnx
        self._onnx_threads = 0
        self._onnx: dict[tuple, object] = {}

    @property
    def has_parser(self) -> bool:
        return self.parser is not None

    def use_onnx(self, cache_dir: str | Path, *, threads: int = 0) -> None:
        """Run the forward passes (backbone, tapped backbone, parser) under ONNX Runtime from now on:
        each exported into ``cache_dir`` at its first input size (one directory per artifact: the
        exports copy these weights), :mod:`ml.onnx_runtime`. For embedding only: training changes
        the Keras weights, which the exports would not follow."""
        self._onnx_dir = Path(cache_dir)
        self._onnx_threads = int(threads)

    @property
    def runtime(self) -> str:
        return "onnx" if self._onnx_dir is not None else "keras"

    def _predict(self, name: str, model, inputs):
        """``model.predict_on_batch(inputs)``, under ONNX Runtime after :meth:`use_onnx`."""
        if self._onnx_dir is None:
            return model.predict_on_batch(inputs)
        from ml.onnx_runtime import OnnxModel

        batch = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        shapes = tuple(tuple(int(d) for d in np.shape(x)[1:]) for x in batch)
        key = (name, shapes)
        if key not in self._onnx:
            label = "_".join("x".join(str(d) for d in shape) for shape in shapes)
            path = self._onnx_dir / f"{name}-{label}.onnx"
            try:
                self._onnx[key] = OnnxModel(model, shapes, path, threads=self._onnx_threads)
            except Exception:  # noqa: BLE001 - any export or session failure: the Keras model still answers
                logger.warning("no ONNX Runtime for %s at %s: it runs under Keras", name, shapes, exc_info=True)
                self._onnx[key] = None
        if self._onnx[key] is None:
            return model.predict_on_batch(inputs)
        return self._onnx[key].predict_on_batch(inputs)

    def window_masks(self, scheme: str) -> np.ndarray:
        if scheme not in self._window_masks:
            self._window_masks[scheme] = region_masks(scheme, *self._map_shape)
        return self._window_masks[scheme]

    @property
    def _snapshot_masks(self) -> np.ndarray:
        return self.window_masks(self.config.regions)

    @classmethod
    def build(cls, config: ModelConfig, *, cache_dir: str | Path | None = None) -> Embedder:
        """A fresh model: backbone with ``config.weights``, randomly initialised head."""
        from ml.backbones import build_backbone

        return cls(config, build_backbone(config.backbone, config.weights, cache_dir=cache_dir), build_head(config))

    # -- feature maps -----------------------------------------------------------------------------
    def _features(self, pixels: np.ndarray) -> np.ndarray:
        from ml.backbones import preprocess

        return np.asarray(self._predict("backbone", self.backbone, preprocess(self.config.backbone, pixels)))

    def item_feature_maps(self, images: Sequence) -> np.ndarray:
        return self._features(load_batch(images, (self.config.item_size,) * 2))

    def snapshot_feature_maps(self, images: Sequence) -> np.ndarray:
        return self._features(load_batch(images, self.config.snapshot_size))

    # -- descriptors ------------------------------------------------------------------------------
    def _check(self, images, batch_size):
        if isinstance(images, (str, Path)) or not isinstance(images, Sequence):
            images = list(images) if not isinstance(images, (str, Path)) else [images]
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        return images

    def embed_items(self, images: Sequence, batch_size: int = 32, progress=None) -> np.ndarray:
        """(n, dim) float32, L2-normalised; images are PIL images (RGB) or paths."""
        images = self._check(images, batch_size)
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            out[start : start + len(chunk)] = _numpy(self.head(self.item_feature_maps(chunk)))
            if progress:
                progress((start + len(chunk)) / len(images), "embedding items")
        return out

    def embed_snapshots(self, images: Sequence, batch_size: int = 8, progress=None, *, scheme=None) -> np.ndarray:
        """(n, rows, dim) float32, L2-normalised rows; row 0 describes the whole snapshot.

        ``scheme``: the artifact's own (None), a window scheme, or "garments" (see :class:`Looks`).
        """
        return self.embed_looks(images, batch_size, progress, scheme=scheme).vectors

    def embed_looks(self, images: Sequence, batch_size: int = 8, progress=None, *, scheme=None) -> Looks:
        """Snapshots -> :class:`Looks`: the vectors, how many rows each uses, and its garments."""
        scheme = scheme or self.config.regions
        if scheme == GARMENTS and self.parser is None:
            raise ValueError("the garment scheme needs an artifact with a parser")
        images = self._check(images, batch_size)
        rows = self.config.max_rows(scheme)
        out = np.zeros((len(images), rows, self.dim), dtype=np.float32)
        counts = np.full(len(images), rows, dtype=np.int64)
        garments: list[list[Garment]] = []
        sizes: list[tuple[int, int]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            if scheme == GARMENTS:
                photos = [open_rgb(img) for img in chunk]
                sizes += [(photo.height, photo.width) for photo in photos]
                vectors, found = self._embed_garment_batch(photos)
                for j, v in enumerate(vectors):
                    out[start + j] = v[0]  # padding rows repeat the whole photo
                    out[start + j, : len(v)] = v
                    counts[start + j] = len(v)
                garments += found
            else:
                maps = self.snapshot_feature_maps(chunk)
                out[start : start + len(chunk)] = _numpy(self.head(maps, masks=self.window_masks(scheme)))
                garments += [[] for _ in chunk]
                sizes += [(0, 0) for _ in chunk]  # no garments to place
            if progress:
                progress((start + len(chunk)) / len(images), "embedding snapshots")
        per_garment = 2 if scheme == GARMENTS and self.config.garment_descriptor == "both" else 1
        return Looks(out, counts, garments, scheme, sizes, per_garment)

    # -- garments ---------------------------------------------------------------------------------
    def _tapped_forward(self, frames: np.ndarray):
        from ml.backbones import preprocess
        from ml.parser import tapped_backbone

        if self._tapped is None:
            self._tapped = tapped_backbone(self.backbone, self.config.backbone)
        outs = self._predict("tapped", self._tapped, preprocess(self.config.backbone, frames))
        return [np.asarray(o) for o in outs]  # tap8, tap16, tap32, final map

    def _parse_frames(self, taps, photos) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per photo: (group labels (h, w) uint8, confidence (h, w) float32) at the photo's own size."""
        from keras import ops

        from ml.parser import parser_inputs

        logits = self._predict("parser", self.parser, parser_inputs(taps, self.parser_config))
        probs = ops.image.resize(ops.softmax(logits, axis=-1), self.config.snapshot_size, interpolation="bilinear")
        labels = _numpy(ops.argmax(probs, axis=-1)).astype(np.uint8)  # (b, H, W): the letterboxed frame
        confidence = _numpy(ops.max(probs, axis=-1)).astype(np.float32)
        out = []
        for lab, conf, photo in zip(labels, confidence, photos, strict=True):
            top, left, new_h, new_w = letterbox_geometry((photo.height, photo.width), self.config.snapshot_size)
            size = (photo.width, photo.height)  # the photo's own pixels, no padding, at its own size
            lab = Image.fromarray(lab[top : top + new_h, left : left + new_w]).resize(size, Image.NEAREST)
            conf = Image.fromarray(conf[top : top + new_h, left : left + new_w]).resize(size, Image.BILINEAR)
            out.append((np.asarray(lab), np.asarray(conf, dtype=np.float32)))
        return out

    def parse(self, images: Sequence, batch_size: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per snapshot: its group map (h, w) (ids into :data:`ml.garments.GROUPS`) and confidence."""
        if self.parser is None:
            raise ValueError("this artifact has no garment parser")
        out = []
        for chunk in [images[i : i + batch_size] for i in range(0, len(images), batch_size)]:
            photos = [open_rgb(img) for img in chunk]
            frames = np.stack([letterbox(p, self.config.snapshot_size) for p in photos])
            out += self._parse_frames(self._tapped_forward(frames), photos)
        return out

    def garments_of(self, parsed) -> list[Garment]:
        """The garments of one :meth:`parse` result, with the artifact's post-processing settings."""
        labels, confidence = parsed
        pc = self.parser_config
        return garments_from_parse(
            labels,
            confidence,
            min_area=pc.min_area,
            keep_fraction=pc.keep_fraction,
            max_garments=self.config.max_garments,
        )

    def _pooling_masks(self, garments: list[Garment], photo_hw) -> np.ndarray:
        """(garments, h32 * w32) averaging weights of each garment's mask on the final feature map."""
        h32, w32 = self._map_shape
        frame_h, frame_w = self.config.snapshot_size
        masks = np.zeros((len(garments), h32 * w32), dtype=np.float32)
        for g, garment in enumerate(garments):
            frame = letterbox_labels(garment.full_mask(*photo_hw).astype(np.uint8), (frame_h, frame_w))
            cells = frame[: h32 * (frame_h // h32), : w32 * (frame_w // w32)].astype(np.float32)
            cells = cells.reshape(h32, frame_h // h32, w32, frame_w // w32).mean(axis=(1, 3)).ravel()
            if cells.sum() <= 0:
                cells[np.argmax(cells)] = 1.0
            masks[g] = cells / cells.sum()
        return masks

    def _embed_garment_batch(self, photos) -> tuple[list[np.ndarray], list[list[Garment]]]:
        frames = np.stack([letterbox(p, self.config.snapshot_size) for p in photos])
        taps = self._tapped_forward(frames)
        final = taps[3]
        whole = _numpy(self.head(final))  # (b, dim)
        found = [self.garments_of(parsed) for parsed in self._parse_frames(taps, photos)]
        kind = self.config.garment_descriptor
        crops_vec = pooled_vec = None
        if kind in ("crop", "both"):
            pairs = [(np.asarray(p), g) for p, gs in zip(photos, found, strict=True) for g in gs]
            crops = [Image.fromarray(crop_on_white(photo, g)) for photo, g in pairs]
            crops_vec = self.embed_items(crops) if crops else np.zeros((0, self.dim), np.float32)
        if kind in ("pooled", "both"):
            pooled = []
            for b, (photo, gs) in enumerate(zip(photos, found, strict=True)):
                if gs:
                    masks = self._pooling_masks(gs, (photo.height, photo.width))[None]
                    pooled.append(_numpy(self.head(final[b : b + 1], masks=masks))[0])
            pooled_vec = np.concatenate(pooled) if pooled else np.zeros((0, self.dim), np.float32)
        vectors, at = [], 0
        for b, gs in enumerate(found):
            parts = [whole[b : b + 1]]
            n = len(gs)
            if kind == "crop":
                parts.append(crops_vec[at : at + n])
            elif kind == "pooled":
                parts.append(pooled_vec[at : at + n])
            else:  # both: crop and pooled row per garment, interleaved
                both = np.empty((2 * n, self.dim), np.float32)
                both[0::2], both[1::2] = crops_vec[at : at + n], pooled_vec[at : at + n]
                parts.append(both)
            at += n
            vectors.append(np.concatenate(parts))
        return vectors, found
