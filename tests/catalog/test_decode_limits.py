"""Shopper-photo decoding in the validator: scaled down to ``max_side`` (a JPEG decoded at a reduced scale),
with the decode run inside the caller's ``decode_slot`` and told how many pixels it will hold."""

from __future__ import annotations

import io
from contextlib import contextmanager

import pytest
from PIL import Image

from catalog.validators import validate_image_upload
from tests import factories as f


def _encoded(img: Image.Image, fmt: str, **save) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **save)
    return out.getvalue()


class SlotSpy:
    """A decode_slot that records the pixels it was asked for and whether the decode ran inside it."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.inside = False

    @contextmanager
    def __call__(self, pixels: int):
        self.asked.append(pixels)
        self.inside = True
        try:
            yield
        finally:
            self.inside = False


def test_a_large_jpeg_is_decoded_at_an_eighth_and_scaled_to_fit_max_side():
    data = f.make_image_bytes(size=(4000, 3000))
    slot = SlotSpy()

    clean = validate_image_upload(data, name="big.jpg", max_side=500, decode_slot=slot)

    assert (clean.width, clean.height) == (500, 375)
    assert slot.asked == [500 * 375]  # libjpeg's 1/8 scale: the 12 megapixels were never decoded
    assert Image.open(io.BytesIO(clean.content)).size == (500, 375)


def test_a_large_png_is_decoded_in_full_then_scaled_and_the_slot_is_told_its_full_size():
    data = _encoded(Image.new("RGB", (3000, 2000), (180, 40, 90)), "PNG")
    slot = SlotSpy()

    clean = validate_image_upload(data, name="solid.png", max_side=600, decode_slot=slot)

    assert slot.asked == [3000 * 2000]
    assert (clean.width, clean.height) == (600, 400) and clean.format == "PNG"
    assert clean.open().getpixel((300, 200)) == (180, 40, 90)


def test_without_max_side_the_picture_keeps_its_size_as_staff_uploads_do():
    data = f.make_image_bytes(size=(1200, 900))
    slot = SlotSpy()

    clean = validate_image_upload(data, name="look.jpg", decode_slot=slot)

    assert (clean.width, clean.height) == (1200, 900)
    assert slot.asked == [1200 * 900]


def test_the_orientation_is_applied_after_scaling():
    img = f.make_pil_image(size=(4000, 3000))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    data = _encoded(img, "JPEG", exif=exif.tobytes())

    clean = validate_image_upload(data, name="phone.jpg", max_side=500)

    assert (clean.width, clean.height) == (375, 500)


def test_a_transparent_palette_png_is_smoothed_on_white_when_scaled():
    img = Image.new("P", (2000, 1000), 0)
    img.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    img.paste(1, (1000, 0, 2000, 1000))  # right half palette index 1 (blue)
    img.info["transparency"] = 0  # left half (index 0) transparent
    data = _encoded(img, "PNG", transparency=0)

    clean = validate_image_upload(data, name="logo.png", max_side=200)

    picture = clean.open()
    assert picture.size == (200, 100)
    assert picture.getpixel((20, 50)) == (255, 255, 255)  # transparent -> white, not red or black
    assert picture.getpixel((180, 50)) == (0, 0, 255)


def test_a_slot_that_refuses_stops_the_upload_before_any_pixel_is_decoded():
    class Busy(Exception):
        pass

    @contextmanager
    def refuse(pixels: int):
        raise Busy(pixels)
        yield

    with pytest.raises(Busy) as refused:
        validate_image_upload(f.make_image_bytes(size=(800, 600)), name="a.jpg", max_side=100, decode_slot=refuse)
    assert refused.value.args == (100 * 75,)


def test_pillow_allocates_large_pictures_in_blocks_the_os_gets_back():
    # Above glibc's largest mmap threshold (32 MB): a freed block is unmapped, not kept by a thread's arena.
    assert Image.core.get_block_size() >= 32 * 2**20
