"""Image loading, aspect-preserving resize with padding, and training augmentation (NumPy/PIL only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

PAD_VALUE = 255  # white: CCP item crops are white outside the garment mask


def open_rgb(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, (str, Path)):
        with Image.open(image) as img:
            return img.convert("RGB")
    raise TypeError(f"expected a PIL image or a file path, got {type(image).__name__}")


def letterbox_geometry(image_hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where :func:`letterbox` puts an image of (height, width) ``image_hw`` in a frame of ``size``:
    (top, left, new_height, new_width)."""
    height, width = size
    scale = min(height / image_hw[0], width / image_hw[1])
    new_w, new_h = max(1, round(image_hw[1] * scale)), max(1, round(image_hw[0] * scale))
    return (height - new_h) // 2, (width - new_w) // 2, new_h, new_w


def letterbox(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize keeping the aspect ratio to fit (height, width), centre it on white. -> uint8 (h, w, 3)."""
    height, width = size
    top, left, new_h, new_w = letterbox_geometry((image.height, image.width), size)
    resized = image.resize((new_w, new_h), Image.BILINEAR, reducing_gap=2.0)
    canvas = Image.new("RGB", (width, height), (PAD_VALUE,) * 3)
    canvas.paste(resized, (left, top))
    return np.asarray(canvas)


def letterbox_labels(labels: np.ndarray, size: tuple[int, int], *, pad: int = 0) -> np.ndarray:
    """A label map (h, w) placed as :func:`letterbox` places its photo (nearest neighbour), ``pad`` around."""
    top, left, new_h, new_w = letterbox_geometry(labels.shape[:2], size)
    resized = np.asarray(Image.fromarray(np.asarray(labels, dtype=np.uint8)).resize((new_w, new_h), Image.NEAREST))
    out = np.full(size, pad, dtype=np.uint8)
    out[top : top + new_h, left : left + new_w] = resized
    return out


def load_batch(images: Sequence, size: tuple[int, int]) -> np.ndarray:
    """(batch, height, width, 3) uint8 from PIL images or paths."""
    return np.stack([letterbox(open_rgb(img), size) for img in images])


def augment(image: Image.Image, rng: np.random.Generator, *, min_area: float = 0.6) -> Image.Image:
    """Random resized crop (area >= min_area, aspect 3/4..4/3), horizontal flip, photometric jitter."""
    w, h = image.size
    for _ in range(10):
        area = rng.uniform(min_area, 1.0) * w * h
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            image = image.crop((x0, y0, x0 + cw, y0 + ch))
            break
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.8, 1.2))
    return image


def batched(seq: Sequence, size: int) -> Iterable[Sequence]:
    if size < 1:
        raise ValueError("batch_size must be >= 1")
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
