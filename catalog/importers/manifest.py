"""A shop's own posts from a JSON manifest (format: docs/catalog.md, example: examples/manifest.json).

    {"version": 1, "source": "my-shop", "posts": [
        {"key": "look-001", "image": "snapshots/look-001.jpg", "title": "City layers",
         "person": {"name": "Ana", "age": 31, "occupation": "Architect"},
         "styles": ["Minimal"], "tags": ["autumn"], "brands": ["Acme"],
         "source_url": "https://shop.example/looks/1", "published": true,
         "items": [{"key": "coat-17", "image": "items/coat.jpg", "name": "Wool coat", "brand": "Acme",
                    "category": "Outerwear > Coats", "styles": ["Minimal"], "price": "129.00",
                    "product_url": "https://shop.example/p/17"}]}]}

Image paths are relative to the manifest file. Identities: ``manifest:<source>:post:<key>`` and
``manifest:<source>:item:<key>`` (key defaults to the image path), so a re-run adds nothing
twice and an item listed in several posts (same key) is one item linked to each. An item
whose picture is already in the catalog is linked, not copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from catalog.importers.base import Created, Row, RowFailed, RowSkipped
from catalog.models import Item, Snapshot
from catalog.selectors import source_keys_existing
from catalog.services.images import find_duplicate
from catalog.services.posts import NewItem, post_create
from catalog.services.taxonomy import (
    brand_get_or_create,
    category_get_or_create,
    style_get_or_create,
    tag_get_or_create,
)
from catalog.validators import validate_image_upload

SUPPORTED_VERSIONS = (1,)
POST_FIELDS = {"key", "image", "title", "person", "styles", "tags", "brands", "source_url", "published", "items"}
ITEM_FIELDS = {"key", "image", "name", "brand", "category", "styles", "price", "product_url"}
PERSON_FIELDS = {"name", "age", "occupation"}


class ManifestError(ValueError):
    """The manifest file as a whole is unusable (bad JSON, wrong version, no posts list)."""


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RowFailed(f"{where} must be a list of non-empty names")
    return value


def _text(value: Any, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise RowFailed(f"{where} must be {'a non-empty' if required else 'a'} string")
    return value.strip()


def _unknown(entry: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(entry) - allowed)
    if extra:
        raise RowFailed(f"{where}: unknown field(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


class ManifestImporter:
    def __init__(self, path: Path, *, limit: int | None = None):
        self.path = path
        self.base = path.parent
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: no such file") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: the top level must be an object with a 'posts' list")
        if data.get("version", 1) not in SUPPORTED_VERSIONS:
            raise ManifestError(f"{path}: version {data.get('version')!r} is not supported (use 1)")
        posts = data.get("posts")
        if not isinstance(posts, list):
            raise ManifestError(f"{path}: 'posts' must be a list")
        self.source = _text(data.get("source"), "source") or path.stem
        self.rows = [Row(self._post_key(entry, n), (n, entry)) for n, entry in enumerate(posts, start=1)]
        if limit is not None:
            self.rows = self.rows[:limit]
        self.done = source_keys_existing(model=Snapshot, prefix=f"manifest:{self.source}:post:")

    def _post_key(self, entry: Any, n: int) -> str:
        key = entry.get("key") or entry.get("image") if isinstance(entry, dict) else None
        return f"manifest:{self.source}:post:{key if isinstance(key, str) and key else f'#{n}'}"

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, value: Any, where: str):
        rel = _text(value, where, required=True)
        path = (self.base / rel).resolve()
        if not path.is_file():
            raise RowFailed(f"{where}: image file {rel} not found next to the manifest")
        return validate_image_upload(path, name=rel)

    def handle(self, row: Row) -> Created:
        n, entry = row.data
        where = f"post {n}"
        if not isinstance(entry, dict):
            raise RowFailed(f"{where} must be an object")
        if row.key in self.done:
            raise RowSkipped("already imported")
        _unknown(entry, POST_FIELDS, where)
        person = entry.get("person") or {}
        if not isinstance(person, dict):
            raise RowFailed(f"{where}.person must be an object")
        _unknown(person, PERSON_FIELDS, f"{where}.person")
        age = person.get("age")
        if age is not None and (not isinstance(age, int) or isinstance(age, bool)):
            raise RowFailed(f"{where}.person.age must be a whole number")
        items = entry.get("items") or []
        if not isinstance(items, list):
            raise RowFailed(f"{where}.items must be a list")
        snapshot_image = self._image(entry.get("image"), f"{where}.image")
        entries = [self._item(spec, f"{where}.items[{i}]") for i, spec in enumerate(items)]
        published = entry.get("published", True)
        if not isinstance(published, bool):
            raise RowFailed(f"{where}.published must be true or false")
        snapshot = post_create(
            image=snapshot_image,
            title=_text(entry.get("title"), f"{where}.title") or Path(entry["image"]).stem,
            person_name=_text(person.get("name"), f"{where}.person.name"),
            person_age=age,
            person_occupation=_text(person.get("occupation"), f"{where}.person.occupation"),
            styles=[style_get_or_create(name=s) for s in _names(entry.get("styles"), f"{where}.styles")],
            tags=[tag_get_or_create(name=t) for t in _names(entry.get("tags"), f"{where}.tags")],
            brands=[brand_get_or_create(name=b) for b in _names(entry.get("brands"), f"{where}.brands")],
            source_url=_text(entry.get("source_url"), f"{where}.source_url"),
            is_published=published,
            items=entries,
            source_key=row.key,
            enqueue=False,
        )
        new_keys = [e.source_key for e in entries if isinstance(e, NewItem)]
        item_ids = list(Item.objects.filter(source_key__in=new_keys).values_list("pk", flat=True))
        return Created(item_ids=item_ids, snapshot_ids=[snapshot.pk])

    def _item(self, spec: Any, where: str) -> Item | NewItem:
        if not isinstance(spec, dict):
            raise RowFailed(f"{where} must be an object")
        _unknown(spec, ITEM_FIELDS, where)
        key = _text(spec.get("key"), f"{where}.key") or _text(spec.get("image"), f"{where}.image", required=True)
        source_key = f"manifest:{self.source}:item:{key}"
        existing = Item.objects.filter(source_key=source_key).first()
        if existing is not None:
            return existing
        clean = self._image(spec.get("image"), f"{where}.image")
        duplicate = find_duplicate(model=Item, content_hash=clean.content_hash)
        if duplicate is not None:
            return duplicate
        price = spec.get("price")
        if price is not None:
            try:
                price = Decimal(str(price))
            except InvalidOperation as exc:
                raise RowFailed(f"{where}.price {spec['price']!r} is not a number") from exc
        brand, category = spec.get("brand"), spec.get("category")
        return NewItem(
            image=clean,
            name=_text(spec.get("name"), f"{where}.name") or Path(spec["image"]).stem,
            brand=brand_get_or_create(name=_text(brand, f"{where}.brand")) if brand else None,
            category=category_get_or_create(path=_text(category, f"{where}.category")) if category else None,
            styles=[style_get_or_create(name=s) for s in _names(spec.get("styles"), f"{where}.styles")],
            price=price,
            product_url=_text(spec.get("product_url"), f"{where}.product_url"),
            source_key=source_key,
        )
