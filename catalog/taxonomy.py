"""The one canonical category tree, and how source names map into it: pure data and pure functions.

Every importer brings its own names (CCP's ``t-shirt``, the clothing dataset's ``Outwear``, a
manifest's ``Bottoms > Shorts``). :func:`canonical_path` maps such a name or path to a node of
:data:`TREE`, so one garment kind is one category whatever imported it. A node's identity is its
slug: slugs are stable (renaming a node in the admin keeps it canonical) and unique in the tree.

:data:`GROUP_CATEGORIES` says which canonical categories (with their subtrees) hold each garment
group of the parser (``ml.garments.GROUP_LABELS``; this module does not import ``ml``).

No database access here: ``catalog.services.taxonomy`` writes the rows, ``catalog.selectors``
reads them, and migration 0007 keeps its own frozen copy of these tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

PATH_SEPARATOR = ">"


@dataclass(frozen=True)
class Node:
    """A canonical category: ``name`` as shown, ``slug`` its stable identity, ``children`` below it."""

    name: str
    slug: str
    children: tuple[Node, ...] = ()


def _node(name: str, slug: str, *children: Node) -> Node:
    return Node(name, slug, children)


TREE: tuple[Node, ...] = (
    _node(
        "Tops",
        "tops",
        _node("T-shirts", "t-shirts"),
        _node("Long sleeves", "long-sleeves"),
        _node("Polos", "polos"),
        _node("Shirts", "shirts"),
        _node("Blouses", "blouses"),
        _node("Vests & tank tops", "vests-tank-tops"),
        _node("Bodysuits", "bodysuits"),
    ),
    _node(
        "Knitwear",
        "knitwear",
        _node("Sweaters", "sweaters"),
        _node("Cardigans", "cardigans"),
        _node("Hoodies & sweatshirts", "hoodies-sweatshirts"),
    ),
    _node(
        "Outerwear",
        "outerwear",
        _node("Coats", "coats"),
        _node("Jackets", "jackets"),
        _node("Blazers", "blazers"),
        _node("Capes", "capes"),
        _node("Suits", "suits"),
    ),
    _node("Dresses", "dresses", _node("Jumpsuits & rompers", "jumpsuits-rompers")),
    _node("Skirts", "skirts"),
    _node("Trousers", "trousers", _node("Leggings", "leggings")),
    _node("Jeans", "jeans"),
    _node("Shorts", "shorts"),
    _node("Legwear", "legwear", _node("Tights", "tights"), _node("Stockings", "stockings"), _node("Socks", "socks")),
    _node("Lingerie", "lingerie", _node("Bras", "bras"), _node("Briefs", "briefs")),
    _node("Swimwear", "swimwear"),
    _node(
        "Shoes",
        "shoes",
        _node("Sneakers", "sneakers"),
        _node("Heels", "heels"),
        _node("Pumps", "pumps"),
        _node("Wedges", "wedges"),
        _node("Flats", "flats"),
        _node("Loafers", "loafers"),
        _node("Sandals", "sandals"),
        _node("Clogs", "clogs"),
    ),
    _node("Boots", "boots"),
    _node("Bags", "bags", _node("Purses", "purses"), _node("Wallets", "wallets")),
    _node("Hats", "hats"),
    _node("Scarves", "scarves"),
    _node("Belts", "belts"),
    _node(
        "Jewellery",
        "jewellery",
        _node("Bracelets", "bracelets"),
        _node("Earrings", "earrings"),
        _node("Necklaces", "necklaces"),
        _node("Rings", "rings"),
    ),
    _node(
        "Accessories",
        "accessories",
        _node("Watches", "watches"),
        _node("Glasses", "glasses"),
        _node("Sunglasses", "sunglasses"),
        _node("Gloves", "gloves"),
        _node("Ties", "ties"),
    ),
)

# Garment group (ml.garments.GROUP_LABELS) -> the canonical categories holding it, each with its
# subtree. Lingerie sits with tops (bras, intimates) and its briefs with shorts (CCP's "panties"),
# as the parser groups them; ties are an accessory a scarf search includes. Two levels at most: the
# lists show a category as "Parent > Child" from one join.
GROUP_CATEGORIES: dict[str, tuple[str, ...]] = {
    "tops": ("tops", "lingerie", "swimwear"),
    "knitwear": ("knitwear",),
    "outerwear": ("outerwear",),
    "dress": ("dresses",),
    "skirt": ("skirts",),
    "trousers": ("trousers",),
    "jeans": ("jeans",),
    "shorts": ("shorts", "briefs"),
    "legwear": ("legwear",),
    "shoes": ("shoes",),
    "boots": ("boots",),
    "bag": ("bags",),
    "hat": ("hats",),
    "scarf": ("scarves", "ties"),
    "belt": ("belts",),
    "accessories": ("accessories", "jewellery"),
}

# Source names and paths (normalised: see normalise) that are not a canonical node's own name or
# path -> the canonical path. Every node's name and full path map to it without an entry here.
EXPLICIT_ALIASES: dict[str, str] = {
    # CCP labels (ml.garments.GROUP_LABELS), singular as CCP writes them.
    "t-shirt": "Tops > T-shirts",
    "shirt": "Tops > Shirts",
    "blouse": "Tops > Blouses",
    "top": "Tops",
    "vest": "Tops > Vests & tank tops",
    "bodysuit": "Tops > Bodysuits",
    "bra": "Lingerie > Bras",
    "intimate": "Lingerie",
    "panties": "Lingerie > Briefs",
    "sweater": "Knitwear > Sweaters",
    "jumper": "Knitwear > Sweaters",
    "cardigan": "Knitwear > Cardigans",
    "hoodie": "Knitwear > Hoodies & sweatshirts",
    "sweatshirt": "Knitwear > Hoodies & sweatshirts",
    "coat": "Outerwear > Coats",
    "jacket": "Outerwear > Jackets",
    "blazer": "Outerwear > Blazers",
    "cape": "Outerwear > Capes",
    "suit": "Outerwear > Suits",
    "dress": "Dresses",
    "romper": "Dresses > Jumpsuits & rompers",
    "skirt": "Skirts",
    "pants": "Trousers",
    "stocking": "Legwear > Stockings",
    "sock": "Legwear > Socks",
    "heel": "Shoes > Heels",
    "pump": "Shoes > Pumps",
    "flat": "Shoes > Flats",
    "sandal": "Shoes > Sandals",
    "sneaker": "Shoes > Sneakers",
    "loafer": "Shoes > Loafers",
    "clog": "Shoes > Clogs",
    "wedge": "Shoes > Wedges",
    "boot": "Boots",
    "bag": "Bags",
    "purse": "Bags > Purses",
    "wallet": "Bags > Wallets",
    "hat": "Hats",
    "scarf": "Scarves",
    "tie": "Accessories > Ties",
    "belt": "Belts",
    "bracelet": "Jewellery > Bracelets",
    "earring": "Jewellery > Earrings",
    "necklace": "Jewellery > Necklaces",
    "ring": "Jewellery > Rings",
    "watch": "Accessories > Watches",
    # The clothing dataset's labels (lowercased) not covered above.
    "longsleeve": "Tops > Long sleeves",
    "polo": "Tops > Polos",
    "undershirt": "Tops > Vests & tank tops",
    "body": "Tops > Bodysuits",
    "outwear": "Outerwear",
    # Common shop names and paths.
    "tee": "Tops > T-shirts",
    "tees": "Tops > T-shirts",
    "tshirt": "Tops > T-shirts",
    "tshirts": "Tops > T-shirts",
    "t shirt": "Tops > T-shirts",
    "long sleeve": "Tops > Long sleeves",
    "tank top": "Tops > Vests & tank tops",
    "tank tops": "Tops > Vests & tank tops",
    "vests": "Tops > Vests & tank tops",
    "jumpers": "Knitwear > Sweaters",
    "pullover": "Knitwear > Sweaters",
    "hoodies": "Knitwear > Hoodies & sweatshirts",
    "sweatshirts": "Knitwear > Hoodies & sweatshirts",
    "outer wear": "Outerwear",
    "jumpsuit": "Dresses > Jumpsuits & rompers",
    "rompers": "Dresses > Jumpsuits & rompers",
    "trouser": "Trousers",
    "bottoms > trousers": "Trousers",
    "bottoms > pants": "Trousers",
    "bottoms > jeans": "Jeans",
    "bottoms > shorts": "Shorts",
    "bottoms > skirts": "Skirts",
    "bottoms > leggings": "Trousers > Leggings",
    "tops > tees": "Tops > T-shirts",
    "tops > t-shirt": "Tops > T-shirts",
    "trainers": "Shoes > Sneakers",
    "footwear": "Shoes",
    "footwear > sneakers": "Shoes > Sneakers",
    "footwear > boots": "Boots",
    "shoes > boots": "Boots",
    "handbag": "Bags",
    "handbags": "Bags",
    "jewelry": "Jewellery",
    "sunglass": "Accessories > Sunglasses",
    "glove": "Accessories > Gloves",
}


def normalise(name_or_path: str) -> str:
    """Lowercased, whitespace collapsed, levels joined by `` > ``: ``" Tops>T-Shirts"`` -> ``"tops > t-shirts"``."""
    parts = (" ".join(part.split()).casefold() for part in name_or_path.split(PATH_SEPARATOR))
    return f" {PATH_SEPARATOR} ".join(parts)


def walk(nodes: tuple[Node, ...] = TREE, parents: tuple[Node, ...] = ()) -> Iterator[tuple[tuple[Node, ...], Node]]:
    """``(ancestors, node)`` for every node, parents before children, in tree order."""
    for node in nodes:
        yield parents, node
        yield from walk(node.children, (*parents, node))


def path_of(ancestors: tuple[Node, ...], node: Node) -> str:
    return f" {PATH_SEPARATOR} ".join(n.name for n in (*ancestors, node))


# Canonical path -> the chain of nodes from the top level down to it.
CHAINS: dict[str, tuple[Node, ...]] = {path_of(parents, node): (*parents, node) for parents, node in walk()}
SLUG_PATHS: dict[str, str] = {chain[-1].slug: path for path, chain in CHAINS.items()}

# Every normalised name or path a source may use -> the canonical path.
ALIASES: dict[str, str] = {
    **{normalise(chain[-1].name): path for path, chain in CHAINS.items()},
    **{normalise(path): path for path in CHAINS},
    **EXPLICIT_ALIASES,
}


def canonical_path(name_or_path: str) -> str | None:
    """The canonical path (``"Outerwear > Coats"``) a source name or path means, or None when unknown."""
    return ALIASES.get(normalise(name_or_path))


def canonical_split(name_or_path: str) -> tuple[str | None, tuple[str, ...]]:
    """The longest leading part of a path that maps to a canonical node, and the levels after it.

    ``"Outwear > Parkas"`` -> ``("Outerwear", ("Parkas",))``; a path with no known leading part
    -> ``(None, all its levels)``. Levels are whitespace-collapsed, as given otherwise.
    """
    levels = tuple(" ".join(part.split()) for part in name_or_path.split(PATH_SEPARATOR))
    for cut in range(len(levels), 0, -1):
        path = canonical_path(f" {PATH_SEPARATOR} ".join(levels[:cut]))
        if path is not None:
            return path, levels[cut:]
    return None, levels


def chain_of(path: str) -> tuple[Node, ...]:
    """The nodes from the top level down to the canonical ``path`` (KeyError when it is not canonical)."""
    return CHAINS[path]


# What a shopper reads for each garment group (the keys of GROUP_CATEGORIES).
GROUP_NAMES: dict[str, str] = {
    "tops": "Top",
    "knitwear": "Knitwear",
    "outerwear": "Coat or jacket",
    "dress": "Dress",
    "skirt": "Skirt",
    "trousers": "Trousers",
    "jeans": "Jeans",
    "shorts": "Shorts",
    "legwear": "Tights or socks",
    "shoes": "Shoes",
    "boots": "Boots",
    "bag": "Bag",
    "hat": "Hat",
    "scarf": "Scarf",
    "belt": "Belt",
    "accessories": "Accessory",
}
