"""The one image-upload validator: admin forms, importers and the public upload all call it.

``validate_image_upload(file, name=...)`` decodes the file (the name proves nothing), enforces
``settings.CATALOG_MAX_UPLOAD_BYTES`` and ``settings.CATALOG_MAX_IMAGE_PIXELS`` (the pixel
limit is checked from the header, before any pixel is decoded), rejects truncated files,
applies the EXIF orientation and returns the picture as RGB, re-encoded (JPEG, or PNG for
lossless sources), with its size and a content hash. Every failure is a
``django.core.exceptions.ValidationError`` whose message names the file and the reason.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
JPEG_QUALITY = 90


@dataclass(frozen=True)
class CleanImage:
    """A validated picture, ready to store: RGB, orientation applied, metadata stripped."""

    name: str
    content: bytes  # the encoded file to store
    format: str  # "JPEG" or "PNG"
    width: int
    height: int
    content_hash: str  # SHA-256 of the decoded RGB pixels and the size (same picture -> same hash)

    @property
    def extension(self) -> str:
        return ".png" if self.format == "PNG" else ".jpg"

    def open(self) -> Image.Image:
        """The picture as a PIL RGB image (decoded from ``content``)."""
        img = Image.open(io.BytesIO(self.content))
        img.load()
        return img


def size_text(n_bytes: int) -> str:
    """A byte count as people read it, in binary units: "15 MiB", "2.5 MiB", "700 KiB", "200 bytes".

    The one wording of file sizes: the validator's messages, the API's 413 and the docs use it.
    """
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n_bytes} bytes"


def _fail(name: str, reason: str, code: str) -> ValidationError:
    return ValidationError(f"{name}: {reason}", code=code, params={"name": name})


def pixel_hash(img: Image.Image) -> str:
    """SHA-256 over the size and the RGB pixels: identical pictures hash alike whatever their container."""
    digest = hashlib.sha256(f"{img.width}x{img.height}:".encode())
    digest.update(img.tobytes())
    return digest.hexdigest()


def clean_pil_image(img: Image.Image, *, name: str, prefer_png: bool = False) -> CleanImage:
    """Encode an already decoded PIL image the way uploads are stored (RGB, JPEG or PNG).

    Importers use it for pictures they derive themselves (e.g. garment crops).
    """
    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            # Transparent pixels become white, not black.
            rgba = img.convert("RGBA")
            background = Image.new("RGB", rgba.size, (255, 255, 255))
            background.paste(rgba, mask=rgba.getchannel("A"))
            img = background
        else:
            img = img.convert("RGB")
    out = io.BytesIO()
    fmt = "PNG" if prefer_png else "JPEG"
    if fmt == "PNG":
        img.save(out, format="PNG", optimize=False)
    else:
        img.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return CleanImage(
        name=name, content=out.getvalue(), format=fmt, width=img.width, height=img.height, content_hash=pixel_hash(img)
    )


def _read_limited(file: IO[bytes] | bytes | str | Path, name: str, max_bytes: int) -> bytes:
    if isinstance(file, bytes):
        data = file
    elif isinstance(file, str | Path):
        path = Path(file)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise _fail(name, f"cannot be read ({exc.strerror or exc}).", "unreadable") from exc
        if size > max_bytes:
            raise _fail(name, f"is {size_text(size)}; the limit is {size_text(max_bytes)}.", "too_large")
        data = path.read_bytes()
    else:
        size = getattr(file, "size", None)
        if size is not None and size > max_bytes:
            raise _fail(name, f"is {size_text(size)}; the limit is {size_text(max_bytes)}.", "too_large")
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _fail(name, f"is larger than the limit of {size_text(max_bytes)}.", "too_large")
    if not data:
        raise _fail(name, "is empty.", "empty")
    return data


def _scaled_down(img: Image.Image, max_side: int) -> Image.Image:
    """A decoded picture shrunk in place to fit ``max_side`` (aspect kept): no full-size copy is made,
    except of a palette or unusual mode, which is smoothed to RGB(A) first (it cannot be resampled)."""
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = img.mode == "PA" or (img.mode == "P" and "transparency" in img.info)
        img = img.convert("RGBA" if has_alpha else "RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return img


def validate_image_upload(
    file: IO[bytes] | bytes | str | Path,
    *,
    name: str | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    max_side: int | None = None,
    decode_slot: Callable[[int], AbstractContextManager[object]] | None = None,
) -> CleanImage:
    """Validate and normalise one uploaded picture; raise ``ValidationError`` naming ``name`` and the reason.

    ``file`` may be an uploaded file, any binary file object, raw bytes or a path. With ``max_side``
    the picture comes back scaled down to fit ``max_side`` x ``max_side`` (a shopper's query photo,
    which is never stored); a JPEG is then decoded at a reduced scale (Pillow's draft mode: libjpeg
    scales by 1/2, 1/4 or 1/8 while decoding), so its full-size pixels never exist in memory.
    ``decode_slot(pixels)``, when given, is entered around the decoding with the number of pixels
    the decoder will hold (the caller's limit on memory spent decoding; it may raise to refuse).
    """
    name = name or getattr(file, "name", None) or (str(file) if isinstance(file, str | Path) else "image")
    name = Path(str(name)).name or "image"
    max_bytes = settings.CATALOG_MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
    max_pixels = settings.CATALOG_MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    data = _read_limited(file, name, max_bytes)

    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit and raises at twice it; we apply ours from the header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError as exc:
        raise _fail(name, "is not a JPEG, PNG or WebP image.", "invalid_type") from exc
    except Image.DecompressionBombError as exc:
        raise _fail(name, "has too many pixels (a possible decompression bomb).", "too_many_pixels") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the file's fault
        raise _fail(name, f"cannot be read as an image ({exc}).", "invalid_image") from exc

    with img:
        width, height = img.size  # from the header; no pixels decoded yet
        if width * height > max_pixels:
            raise _fail(
                name,
                f"is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
                f"{max_pixels / 1e6:.1f} megapixels.",
                "too_many_pixels",
            )
        if getattr(img, "n_frames", 1) > 1:
            raise _fail(name, "is animated; upload a still image.", "animated")
        source_format = img.format
        if max_side and max(width, height) > max_side:
            scale = max_side / max(width, height)
            img.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))  # JPEG only
        # img.size is now the size the decoder will fill (smaller than the header's after a JPEG draft).
        with decode_slot(img.width * img.height) if decode_slot else nullcontext():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    img.load()  # Pillow raises OSError on truncated data (LOAD_TRUNCATED_IMAGES is off)
            except Image.DecompressionBombError as exc:
                raise _fail(name, "has too many pixels (a possible decompression bomb).", "too_many_pixels") from exc
            except (OSError, SyntaxError, ValueError) as exc:
                raise _fail(name, f"is truncated or corrupt ({exc}).", "truncated") from exc
            if max_side and max(img.size) > max_side:
                img = _scaled_down(img, max_side)
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - a broken EXIF block must not reject a readable picture
                oriented = img
            return clean_pil_image(oriented, name=name, prefer_png=source_format == "PNG")
