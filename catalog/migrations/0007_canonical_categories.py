"""One canonical category tree: create it and merge the importers' duplicate categories into it.

Before this migration each importer kept its own names, so one garment kind sat in several
categories (the clothing dataset's "Outwear" beside "Outerwear", a manifest's "Bottoms > Shorts"
beside CCP's "shorts"). This creates every canonical node, then, deepest category first, moves
the items of each category whose full path ("Parent > Child") or own name is a known alias into
its canonical category, re-parents its children there (merging a child into a same-named child
of the target), and deletes it once it holds no item and no child. Categories that map nowhere
stay as they are; no item loses its category.

The tree and the aliases are a frozen copy of ``catalog/taxonomy.py`` as of this migration (and
the historical models are used), so the migration keeps its meaning when the module changes.

Reverse: a no-op. The merge cannot be undone (which items came from which duplicate is not
kept), and the merged catalog is valid at 0006 too, so migrating back leaves the rows as they are.
"""

from django.db import migrations

# catalog/taxonomy.py TREE as of this migration: (name, slug, children).
TREE = (
    (
        "Tops",
        "tops",
        (
            ("T-shirts", "t-shirts", ()),
            ("Long sleeves", "long-sleeves", ()),
            ("Polos", "polos", ()),
            ("Shirts", "shirts", ()),
            ("Blouses", "blouses", ()),
            ("Vests & tank tops", "vests-tank-tops", ()),
            ("Bodysuits", "bodysuits", ()),
        ),
    ),
    (
        "Knitwear",
        "knitwear",
        (
            ("Sweaters", "sweaters", ()),
            ("Cardigans", "cardigans", ()),
            ("Hoodies & sweatshirts", "hoodies-sweatshirts", ()),
        ),
    ),
    (
        "Outerwear",
        "outerwear",
        (
            ("Coats", "coats", ()),
            ("Jackets", "jackets", ()),
            ("Blazers", "blazers", ()),
            ("Capes", "capes", ()),
            ("Suits", "suits", ()),
        ),
    ),
    ("Dresses", "dresses", (("Jumpsuits & rompers", "jumpsuits-rompers", ()),)),
    ("Skirts", "skirts", ()),
    ("Trousers", "trousers", (("Leggings", "leggings", ()),)),
    ("Jeans", "jeans", ()),
    ("Shorts", "shorts", ()),
    (
        "Legwear",
        "legwear",
        (
            ("Tights", "tights", ()),
            ("Stockings", "stockings", ()),
            ("Socks", "socks", ()),
        ),
    ),
    (
        "Lingerie",
        "lingerie",
        (
            ("Bras", "bras", ()),
            ("Briefs", "briefs", ()),
        ),
    ),
    ("Swimwear", "swimwear", ()),
    (
        "Shoes",
        "shoes",
        (
            ("Sneakers", "sneakers", ()),
            ("Heels", "heels", ()),
            ("Pumps", "pumps", ()),
            ("Wedges", "wedges", ()),
            ("Flats", "flats", ()),
            ("Loafers", "loafers", ()),
            ("Sandals", "sandals", ()),
            ("Clogs", "clogs", ()),
        ),
    ),
    ("Boots", "boots", ()),
    (
        "Bags",
        "bags",
        (
            ("Purses", "purses", ()),
            ("Wallets", "wallets", ()),
        ),
    ),
    ("Hats", "hats", ()),
    ("Scarves", "scarves", ()),
    ("Belts", "belts", ()),
    (
        "Jewellery",
        "jewellery",
        (
            ("Bracelets", "bracelets", ()),
            ("Earrings", "earrings", ()),
            ("Necklaces", "necklaces", ()),
            ("Rings", "rings", ()),
        ),
    ),
    (
        "Accessories",
        "accessories",
        (
            ("Watches", "watches", ()),
            ("Glasses", "glasses", ()),
            ("Sunglasses", "sunglasses", ()),
            ("Gloves", "gloves", ()),
            ("Ties", "ties", ()),
        ),
    ),
)

# catalog/taxonomy.py EXPLICIT_ALIASES as of this migration (every node's name and path map to it too).
ALIASES = {
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
    "longsleeve": "Tops > Long sleeves",
    "polo": "Tops > Polos",
    "undershirt": "Tops > Vests & tank tops",
    "body": "Tops > Bodysuits",
    "outwear": "Outerwear",
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

SEPARATOR = ">"


def _normalise(name_or_path):
    return f" {SEPARATOR} ".join(" ".join(part.split()).casefold() for part in name_or_path.split(SEPARATOR))


def _walk(nodes, parent_path=None):
    for name, slug, children in nodes:
        path = name if parent_path is None else f"{parent_path} {SEPARATOR} {name}"
        yield path, parent_path, name, slug
        yield from _walk(children, path)


def _alias_table():
    table = {}
    for path, _, name, _ in _walk(TREE):
        table[_normalise(name)] = path
    for path, *_ in _walk(TREE):
        table[_normalise(path)] = path
    table.update(ALIASES)
    return table


def _merge(Category, Item, src, dst_id):
    """Items and children of ``src`` into the category ``dst_id``; ``src`` deleted when left empty."""
    Item.objects.filter(category_id=src.pk).update(category_id=dst_id)
    for child in list(Category.objects.filter(parent_id=src.pk)):
        twin = Category.objects.filter(parent_id=dst_id, name__iexact=child.name).first()
        if twin is not None:
            _merge(Category, Item, child, twin.pk)
        else:
            child.parent_id = dst_id
            child.save(update_fields=["parent"])
    if not Item.objects.filter(category_id=src.pk).exists() and not Category.objects.filter(parent_id=src.pk).exists():
        src.delete()


def canonical_categories(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    Item = apps.get_model("catalog", "Item")
    aliases = _alias_table()

    # Paths and depths as they were before anything moves.
    rows = {c.pk: c for c in Category.objects.all()}

    def path_of(pk):
        names = []
        while pk is not None:
            names.insert(0, rows[pk].name)
            pk = rows[pk].parent_id
        return f" {SEPARATOR} ".join(names)

    old = {pk: (path_of(pk), row.name) for pk, row in rows.items()}

    # 1. The canonical nodes, parents first: an existing row by name under the canonical parent, else the
    # row holding the node's slug (moved and renamed into place), else a new row.
    node_ids = {}
    for path, parent_path, name, slug in _walk(TREE):
        parent_id = node_ids.get(parent_path)
        row = Category.objects.filter(parent_id=parent_id, name__iexact=name).first()
        if row is None:
            row = Category.objects.filter(slug=slug).exclude(pk__in=node_ids.values()).first()
        if row is None:
            row = Category.objects.create(name=name, slug=slug, parent_id=parent_id)
        else:
            row.name, row.parent_id = name, parent_id
            if row.slug != slug and not Category.objects.filter(slug=slug).exists():
                row.slug = slug
            row.save()
        node_ids[path] = row.pk

    # 2. Every other category that maps to a node, deepest first, merged into it.
    canonical = set(node_ids.values())
    for pk in sorted(old, key=lambda pk: -old[pk][0].count(SEPARATOR)):
        if pk in canonical:
            continue
        full_path, name = old[pk]
        target = aliases.get(_normalise(full_path)) or aliases.get(_normalise(name))
        row = Category.objects.filter(pk=pk).first()
        if target is not None and row is not None:
            _merge(Category, Item, row, node_ids[target])


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0006_snapshot_garments"),
    ]

    operations = [
        migrations.RunPython(canonical_categories, migrations.RunPython.noop),
    ]
