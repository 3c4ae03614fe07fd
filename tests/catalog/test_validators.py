"""The upload validator: accepted formats, every refusal with a message naming the file, normalisation."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from catalog.validators import pixel_hash, validate_image_upload
from tests import factories as f


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_webp_and_reports_size_and_hash(fmt):
    data = f.make_image_bytes(seed=7, size=(64, 48), fmt=fmt)
    clean = validate_image_upload(data, name=f"look.{fmt.lower()}")
    assert (clean.width, clean.height) == (64, 48)
    assert clean.format == ("PNG" if fmt == "PNG" else "JPEG")
    stored = Image.open(io.BytesIO(clean.content))
    assert stored.mode == "RGB" and stored.format == clean.format
    assert len(clean.content_hash) == 64


def test_same_pixels_in_another_container_hash_alike():
    png = f.make_image_bytes(seed=3, fmt="PNG")
    # The same picture re-encoded losslessly (RGBA PNG of the same RGB pixels) hashes alike.
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    out = io.BytesIO()
    img.save(out, format="PNG")
    assert (
        validate_image_upload(png, name="a.png").content_hash
        == validate_image_upload(out.getvalue(), name="b.png").content_hash
    )
    assert (
        validate_image_upload(png, name="a.png").content_hash
        != validate_image_upload(f.make_image_bytes(seed=4, fmt="PNG"), name="c.png").content_hash
    )


def test_type_is_checked_by_decoding_not_by_name():
    gif = io.BytesIO()
    Image.new("RGB", (10, 10), "red").save(gif, format="GIF")
    with pytest.raises(ValidationError) as err:
        validate_image_upload(gif.getvalue(), name="looks-like.jpg")
    assert err.value.code == "invalid_type"
    assert err.value.messages == ["looks-like.jpg: is not a JPEG, PNG or WebP image."]

    with pytest.raises(ValidationError) as err:
        validate_image_upload(b"%PDF-1.4 not an image at all", name="cv.png")
    assert err.value.code == "invalid_type"
    assert "cv.png" in err.value.messages[0]

    # A real JPEG named .txt is fine: the content decides.
    assert validate_image_upload(f.make_image_bytes(), name="photo.txt").format == "JPEG"


def test_truncated_file_is_rejected(truncated_jpeg):
    with pytest.raises(ValidationError) as err:
        validate_image_upload(truncated_jpeg, name="half.jpg")
    assert err.value.code == "truncated"
    assert err.value.messages[0].startswith("half.jpg: is truncated or corrupt")


def test_oversized_file_is_rejected_before_decoding(settings, jpeg_bytes):
    settings.CATALOG_MAX_UPLOAD_BYTES = len(jpeg_bytes) - 1
    with pytest.raises(ValidationError) as err:
        validate_image_upload(io.BytesIO(jpeg_bytes), name="big.jpg")
    assert err.value.code == "too_large"
    assert "big.jpg" in err.value.messages[0] and "limit" in err.value.messages[0]
    settings.CATALOG_MAX_UPLOAD_BYTES = len(jpeg_bytes)
    assert validate_image_upload(io.BytesIO(jpeg_bytes), name="big.jpg").width == 200


def test_pixel_limit_from_settings(settings):
    settings.CATALOG_MAX_IMAGE_PIXELS = 100 * 100 - 1
    with pytest.raises(ValidationError) as err:
        validate_image_upload(f.make_image_bytes(size=(100, 100)), name="wide.jpg")
    assert err.value.code == "too_many_pixels"
    assert err.value.messages[0] == "wide.jpg: is 100x100 = 0.0 megapixels; the limit is 0.0 megapixels."


def test_decompression_bomb_is_a_clean_validation_error(bomb_png):
    assert len(bomb_png) < 100_000
    with pytest.raises(ValidationError) as err:
        validate_image_upload(bomb_png, name="bomb.png")
    assert err.value.code == "too_many_pixels"
    assert err.value.messages[0].startswith("bomb.png: ")


def test_decompression_bomb_beyond_pillows_own_limit(bomb_png, settings):
    # Above twice Image.MAX_IMAGE_PIXELS Pillow itself raises DecompressionBombError in open().
    settings.CATALOG_MAX_IMAGE_PIXELS = 10**10
    img = Image.new("1", (15000, 15000))
    out = io.BytesIO()
    img.save(out, format="PNG")
    with pytest.raises(ValidationError) as err:
        validate_image_upload(out.getvalue(), name="huge.png")
    assert err.value.code == "too_many_pixels"
    assert "decompression bomb" in err.value.messages[0]


def test_animated_images_are_refused():
    frames = [f.make_pil_image(seed=n, size=(20, 20)) for n in (1, 2)]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(ValidationError) as err:
        validate_image_upload(out.getvalue(), name="moving.webp")
    assert err.value.messages == ["moving.webp: is animated; upload a still image."]


@pytest.mark.parametrize(
    ("n_bytes", "text"),
    [
        (15 * 2**20, "15 MiB"),
        (int(2.5 * 2**20), "2.5 MiB"),
        (700 * 2**10, "700 KiB"),
        (1000, "1000 bytes"),
        (0, "0 bytes"),
    ],
)
def test_sizes_are_worded_in_binary_units(n_bytes, text):
    from catalog.validators import size_text

    assert size_text(n_bytes) == text


def test_the_default_limit_is_worded_as_the_docs_word_it(settings):
    from catalog.validators import size_text

    assert size_text(settings.CATALOG_MAX_UPLOAD_BYTES) == "15 MiB"


def test_empty_file_is_rejected():
    with pytest.raises(ValidationError) as err:
        validate_image_upload(b"", name="empty.jpg")
    assert err.value.messages == ["empty.jpg: is empty."]


def test_exif_orientation_is_applied():
    img = f.make_pil_image(seed=11, size=(60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif, quality=95)
    clean = validate_image_upload(out.getvalue(), name="phone.jpg")
    assert (clean.width, clean.height) == (30, 60)
    stored = Image.open(io.BytesIO(clean.content))
    assert stored.size == (30, 60)
    assert stored.getexif().get(0x0112) is None


def test_transparent_png_and_palette_images_become_rgb_on_white():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    clean = validate_image_upload(out.getvalue(), name="cutout.png")
    stored = Image.open(io.BytesIO(clean.content))
    assert stored.mode == "RGB"
    assert stored.getpixel((5, 5)) == (255, 255, 255)
    assert clean.content_hash == pixel_hash(stored)


def test_path_input_uses_the_file_name(tmp_path):
    path = tmp_path / "shop-photo.png"
    path.write_bytes(b"not an image")
    with pytest.raises(ValidationError) as err:
        validate_image_upload(path)
    assert err.value.messages[0].startswith("shop-photo.png: ")


@pytest.mark.parametrize("doc", ["README.md", "docs/catalog.md"])
def test_the_docs_word_the_upload_limit_as_the_messages_do(settings, doc):
    from pathlib import Path

    from catalog.validators import size_text

    row = next(
        line for line in (Path(settings.BASE_DIR) / doc).read_text().splitlines() if "CATALOG_MAX_UPLOAD_BYTES" in line
    )
    assert size_text(15 * 2**20) in row and " MB" not in row
