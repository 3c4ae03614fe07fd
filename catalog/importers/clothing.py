"""The clothing dataset (github.com/alexeygrigorev/clothing-dataset) as items with categories.

Layout: ``images.csv`` (``image,sender_id,label,kids``) and ``images/<image>.jpg``. Each row
becomes an item named after its label, in the label's canonical category (``catalog.taxonomy``:
"T-Shirt" and CCP's "t-shirt" are one category, "Outwear" is Outerwear). Identity: ``clothing:<image>``.
Rows labelled Not sure / Other / Skip and kids' clothes are skipped with that reason.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from catalog.importers.base import Created, Row, RowFailed, RowSkipped
from catalog.models import Item
from catalog.selectors import source_keys_existing
from catalog.services.items import item_create
from catalog.services.taxonomy import category_get_or_create
from catalog.validators import validate_image_upload

NOT_GARMENTS = frozenset({"Not sure", "Other", "Skip"})
REQUIRED_COLUMNS = {"image", "label"}


def source_key(image_id: str) -> str:
    return f"clothing:{image_id}"


class ClothingImporter:
    def __init__(self, root: Path, *, limit: int | None = None, include_kids: bool = False):
        csv_path = root / "images.csv"
        if not csv_path.is_file():
            raise FileNotFoundError(f"{root} is not a clothing-dataset folder (no images.csv)")
        self.root = root
        self.include_kids = include_kids
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = REQUIRED_COLUMNS - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{csv_path} lacks the column(s) {', '.join(sorted(missing))}")
            self.rows = [Row(source_key(r["image"]), (n, r)) for n, r in enumerate(reader, start=2)]
        if limit is not None:
            self.rows = self.rows[:limit]
        self.done = source_keys_existing(model=Item, prefix="clothing:")

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def handle(self, row: Row) -> Created:
        line, record = row.data
        if row.key in self.done:
            raise RowSkipped("already imported")
        image_id, label = (record.get("image") or "").strip(), (record.get("label") or "").strip()
        if not image_id or not label:
            raise RowFailed(f"line {line}: empty image or label")
        if label in NOT_GARMENTS:
            raise RowSkipped(f"label {label!r} is not a garment category")
        if (record.get("kids") or "").strip() == "True" and not self.include_kids:
            raise RowSkipped("kids' clothes")
        path = self.root / "images" / f"{image_id}.jpg"
        if not path.is_file():
            raise RowFailed(f"line {line}: image file images/{image_id}.jpg is missing")
        # Taxonomy rows are looked up per row (not cached): a failed row's savepoint may have rolled one back.
        image = validate_image_upload(path)
        item = item_create(
            image=image,
            name=f"{label} {image_id[:8]}",
            category=category_get_or_create(path=label),
            source_key=row.key,
            enqueue=False,
        )
        return Created(item_ids=[item.pk])
