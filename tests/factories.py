"""Shared test factories: plain functions that create catalog rows with generated pictures.

Every picture is unique (a counter seeds its colours), goes through the real validator and
services (so width/height/content_hash/thumbnail are set), and no embedding task is sent
unless ``enqueue=True``.

    from tests import factories as f
    snapshot = f.make_post(n_items=3)            # a snapshot with 3 new items
    item = f.make_item(category=f.make_category("Shoes"))
    upload = f.make_upload("look.jpg")           # a SimpleUploadedFile for forms / the test client
"""

from __future__ import annotations

import io
import itertools
import random
from collections.abc import Sequence
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

_counter = itertools.count(1)


def _next() -> int:
    return next(_counter)


def make_pil_image(*, seed: int | None = None, size: tuple[int, int] = (120, 180)) -> Image.Image:
    """A distinct RGB picture: a background and a few coloured boxes chosen by ``seed``."""
    seed = _next() if seed is None else seed
    rng = random.Random(seed)
    img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(4):
        x0, y0 = rng.randrange(w - 4), rng.randrange(h - 4)
        x1, y1 = rng.randrange(x0 + 2, w), rng.randrange(y0 + 2, h)
        draw.rectangle([x0, y0, x1, y1], fill=tuple(rng.randrange(256) for _ in range(3)))
    draw.text((4, 4), str(seed), fill=(255, 255, 255))
    return img


def make_image_bytes(*, seed: int | None = None, size: tuple[int, int] = (120, 180), fmt: str = "JPEG") -> bytes:
    """An encoded picture (``fmt``: JPEG, PNG or WEBP)."""
    out = io.BytesIO()
    make_pil_image(seed=seed, size=size).save(out, format=fmt)
    return out.getvalue()


def make_upload(
    name: str = "image.jpg", *, seed: int | None = None, size: tuple[int, int] = (120, 180), fmt: str = "JPEG"
) -> SimpleUploadedFile:
    """An uploaded file for forms and the test client."""
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(fmt, "application/octet-stream")
    return SimpleUploadedFile(name, make_image_bytes(seed=seed, size=size, fmt=fmt), content_type=content_type)


def make_clean_image(name: str = "image.jpg", *, seed: int | None = None, size: tuple[int, int] = (120, 180)):
    """A validated :class:`catalog.validators.CleanImage`, as the services take it."""
    from catalog.validators import validate_image_upload

    return validate_image_upload(make_image_bytes(seed=seed, size=size), name=name)


def post_items_formset(forms: list[dict], initial: int = 0) -> dict:
    """The admin's post-items inline as form data: management fields plus each form's fields."""
    data = {
        "post_items-TOTAL_FORMS": str(len(forms)),
        "post_items-INITIAL_FORMS": str(initial),
        "post_items-MIN_NUM_FORMS": "0",
        "post_items-MAX_NUM_FORMS": "1000",
    }
    for n, form in enumerate(forms):
        data.update({f"post_items-{n}-{key}": value for key, value in form.items()})
    return data


def make_style(name: str | None = None):
    from catalog.services.taxonomy import style_get_or_create

    return style_get_or_create(name=name or f"Style {_next()}")


def make_brand(name: str | None = None):
    from catalog.services.taxonomy import brand_get_or_create

    return brand_get_or_create(name=name or f"Brand {_next()}")


def make_tag(name: str | None = None):
    from catalog.services.taxonomy import tag_get_or_create

    return tag_get_or_create(name=name or f"tag-{_next()}")


def make_category(name: str | None = None, *, parent=None):
    """A category; with ``parent`` it becomes a subcategory (``make_category("Sneakers", parent=shoes)``)."""
    from catalog.models import Category
    from catalog.services.taxonomy import category_get_or_create

    name = name or f"Category {_next()}"
    if parent is None:
        return category_get_or_create(path=name)
    assert isinstance(parent, Category)
    path = [name]
    node = parent
    while node is not None:
        path.insert(0, node.name)
        node = node.parent
    return category_get_or_create(path=" > ".join(path))


def make_item(
    name: str | None = None,
    *,
    brand=None,
    category=None,
    styles: Sequence = (),
    price: Decimal | str | None = None,
    product_url: str = "",
    source_key: str | None = None,
    embedding_status: str | None = None,
    image=None,
    enqueue: bool = False,
):
    """An item with a generated picture (or ``image``, a CleanImage). ``embedding_status`` overrides pending."""
    from catalog.models import Item
    from catalog.services.items import item_create

    item = item_create(
        image=image or make_clean_image("item.jpg"),
        name=name or f"Item {_next()}",
        brand=brand,
        category=category,
        styles=styles,
        price=Decimal(price) if isinstance(price, str) else price,
        product_url=product_url,
        source_key=source_key,
        enqueue=enqueue,
    )
    if embedding_status:
        Item.objects.filter(pk=item.pk).update(embedding_status=embedding_status)
        item.embedding_status = embedding_status
    return item


def make_snapshot(
    title: str | None = None,
    *,
    styles: Sequence = (),
    tags: Sequence = (),
    brands: Sequence = (),
    items: Sequence = (),
    is_published: bool = True,
    person_name: str = "",
    person_age: int | None = None,
    person_occupation: str = "",
    source_key: str | None = None,
    embedding_status: str | None = None,
    image=None,
    enqueue: bool = False,
):
    """A snapshot with a generated picture, linked to ``items`` (existing Item rows) in order."""
    from catalog.models import Snapshot
    from catalog.services.posts import post_create

    snapshot = post_create(
        image=image or make_clean_image("snapshot.jpg", size=(160, 240)),
        title=title or f"Snapshot {_next()}",
        items=list(items),
        styles=styles,
        tags=tags,
        brands=brands,
        is_published=is_published,
        person_name=person_name,
        person_age=person_age,
        person_occupation=person_occupation,
        source_key=source_key,
        enqueue=enqueue,
    )
    if embedding_status:
        Snapshot.objects.filter(pk=snapshot.pk).update(embedding_status=embedding_status)
        snapshot.embedding_status = embedding_status
    return snapshot


def make_post_item(snapshot, item, position: int | None = None):
    """Link ``item`` to ``snapshot`` (appended unless ``position`` is given)."""
    from catalog.models import PostItem

    if position is None:
        position = PostItem.objects.filter(snapshot=snapshot).count()
    return PostItem.objects.create(snapshot=snapshot, item=item, position=position)


def make_post(n_items: int = 2, *, title: str | None = None, category=None, styles: Sequence = (), **snapshot_kwargs):
    """A snapshot with ``n_items`` new items (sharing ``category``/``styles`` when given)."""
    items = [make_item(category=category, styles=styles) for _ in range(n_items)]
    return make_snapshot(title, items=items, styles=styles, **snapshot_kwargs)


def make_model_version(*, name: str | None = None, dim: int = 8, max_regions: int = 1, status: str = "ready", **kwargs):
    """A recommender.ModelVersion row (no artifact), for embedding tests."""
    from recommender.models import ModelVersion

    return ModelVersion.objects.create(
        name=name or f"test-model-{_next()}",
        backbone=kwargs.pop("backbone", "test"),
        dim=dim,
        max_regions=max_regions,
        status=status,
        **kwargs,
    )
