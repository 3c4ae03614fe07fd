"""Staff actions on the garments the parser found on a post's snapshot: make an item of one, accept tags.

A garment's item is its box cut from the snapshot, white outside its outline (as CCP's item crops
are), named after its kind and the look, in the first canonical category of its group, linked to
the post, and embedded after commit like any new item. Its ``source_key`` names the garment, so a
second click finds the item made the first time instead of making another.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from PIL import Image, ImageChops, ImageDraw, ImageOps

from catalog.models import Category, Item, PostItem, Snapshot, SnapshotGarment, Tag
from catalog.services.items import item_create
from catalog.services.posts import post_items_set
from catalog.services.taxonomy import tag_get_or_create
from catalog.taxonomy import GROUP_CATEGORIES, GROUP_NAMES
from catalog.validators import clean_pil_image


def garment_source_key(garment: SnapshotGarment) -> str:
    return f"garment:{garment.snapshot_id}:{garment.model_version_id}:{garment.region}"


def garment_crop(*, snapshot: Snapshot, garment: SnapshotGarment) -> Image.Image:
    """The garment's box of the snapshot's photo (orientation applied, as the worker saw it), white
    outside its outline polygons (even-odd: a hole stays white); the whole box when it has no outline."""
    with snapshot.image.open("rb") as f, Image.open(f) as raw:
        photo = ImageOps.exif_transpose(raw).convert("RGB")
    width, height = photo.size
    left, top, right, bottom = garment.box
    x0, y0 = int(left * width), int(top * height)
    box = (x0, y0, max(x0 + 1, round(right * width)), max(y0 + 1, round(bottom * height)))
    crop = photo.crop(box)
    if not garment.outline:
        return crop
    mask = Image.new("1", crop.size, 0)
    for polygon in garment.outline:
        if len(polygon) < 3:
            continue
        layer = Image.new("1", crop.size, 0)
        points = [(x * width - box[0] - 0.5, y * height - box[1] - 0.5) for x, y in polygon]
        ImageDraw.Draw(layer).polygon(points, fill=1, outline=1)
        mask = ImageChops.logical_xor(mask, layer)
    white = Image.new("RGB", crop.size, (255, 255, 255))
    return Image.composite(crop, white, mask)


def group_category(group: str) -> Category | None:
    """The category a garment group's new items go into: the group's first canonical category, if it exists."""
    slugs = GROUP_CATEGORIES.get(group, ())
    return Category.objects.filter(slug=slugs[0]).first() if slugs else None


@transaction.atomic
def post_item_from_garment(*, snapshot: Snapshot, garment: SnapshotGarment, name: str | None = None) -> Item:
    """An item made of one garment of the post's snapshot and linked to the post (last), embedded after
    commit; the item made from this garment before, when there is one (linked again if it was unlinked).
    Raises ``ValidationError`` for another snapshot's garment or a picture already in the catalog."""
    if garment.snapshot_id != snapshot.pk:
        raise ValidationError("This garment belongs to another snapshot.")
    key = garment_source_key(garment)
    item = Item.objects.filter(source_key=key).first()
    if item is None:
        crop = garment_crop(snapshot=snapshot, garment=garment)
        image = clean_pil_image(crop, name=f"{snapshot.pk}-{garment.group}-{garment.region}.png", prefer_png=True)
        label = GROUP_NAMES.get(garment.group, garment.group)
        item = item_create(
            image=image,
            name=(name or f"{label} from {snapshot.title}")[:200],
            category=group_category(garment.group),
            source_key=key,
        )
    linked = [row.item for row in PostItem.objects.filter(snapshot=snapshot).select_related("item")]
    if item.pk not in {i.pk for i in linked}:
        post_items_set(snapshot=snapshot, items=[*linked, item])
    return item


def snapshot_tags_suggested(*, snapshot: Snapshot, garments: list[SnapshotGarment]) -> list[str]:
    """Tag names for the garments found (their groups' names, lower case) that the snapshot lacks, in order."""
    have = {name.lower() for name in snapshot.tags.values_list("name", flat=True)}
    out: list[str] = []
    for garment in garments:
        name = GROUP_NAMES.get(garment.group, garment.group).lower()
        if name not in have and name not in out:
            out.append(name)
    return out


@transaction.atomic
def snapshot_tags_accept(*, snapshot: Snapshot, names: list[str]) -> list[Tag]:
    """Add these tags (created on first use) to the snapshot; returns the tags added."""
    tags = [tag_get_or_create(name=name) for name in names]
    snapshot.tags.add(*tags)
    return tags
