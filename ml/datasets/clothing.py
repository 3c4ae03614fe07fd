"""clothing-dataset (github.com/alexeygrigorev/clothing-dataset): product photos with categories.

Layout: ``images.csv`` (``image,sender_id,label,kids``) and ``images/<image>.jpg``.
:data:`CCP_TO_GALLERY` maps CCP garment labels to gallery categories, for the
category-agreement metric of the CCP-Posts protocol.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

EXCLUDED = frozenset({"Not sure", "Other", "Skip"})

# CCP label -> clothing-dataset categories that count as "the same kind of garment".
CCP_TO_GALLERY: dict[str, tuple[str, ...]] = {
    "blazer": ("Blazer", "Outwear"),
    "blouse": ("Blouse", "Shirt", "Top"),
    "bodysuit": ("Body",),
    "boots": ("Shoes",),
    "clogs": ("Shoes",),
    "flats": ("Shoes",),
    "heels": ("Shoes",),
    "loafers": ("Shoes",),
    "pumps": ("Shoes",),
    "sandals": ("Shoes",),
    "shoes": ("Shoes",),
    "sneakers": ("Shoes",),
    "wedges": ("Shoes",),
    "cape": ("Outwear",),
    "coat": ("Outwear",),
    "jacket": ("Outwear", "Blazer"),
    "cardigan": ("Longsleeve", "Outwear"),
    "jumper": ("Longsleeve", "Hoodie"),
    "sweater": ("Longsleeve", "Hoodie"),
    "sweatshirt": ("Hoodie", "Longsleeve"),
    "hoodie": ("Hoodie",),
    "dress": ("Dress",),
    "romper": ("Dress",),
    "hat": ("Hat",),
    "jeans": ("Pants",),
    "pants": ("Pants",),
    "leggings": ("Pants",),
    "shorts": ("Shorts",),
    "skirt": ("Skirt",),
    "shirt": ("Shirt", "Longsleeve"),
    "t-shirt": ("T-Shirt",),
    "top": ("Top", "T-Shirt", "Undershirt"),
    "vest": ("Undershirt", "Top"),
    "suit": ("Blazer",),
}


@dataclass(frozen=True)
class GalleryItem:
    image_id: str
    path: Path
    label: str


def load_gallery(root: str | Path, *, include_kids: bool = False, limit: int | None = None) -> list[GalleryItem]:
    root = Path(root)
    out = []
    with open(root / "images.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["label"] in EXCLUDED or (row.get("kids") == "True" and not include_kids):
                continue
            path = root / "images" / f"{row['image']}.jpg"
            if path.exists():
                out.append(GalleryItem(row["image"], path, row["label"]))
            if limit is not None and len(out) >= limit:
                break
    return out


def gallery_categories(ccp_labels) -> set[str]:
    """Gallery categories matching any of the given CCP label names."""
    return {cat for label in ccp_labels for cat in CCP_TO_GALLERY.get(label, ())}
