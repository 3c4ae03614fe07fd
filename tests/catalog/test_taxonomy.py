"""The canonical category taxonomy: the tree, the aliases of every importer's names, the services that
land imports in it, migration 0007's merge of existing duplicates, and the garment groups' categories."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog import taxonomy
from catalog.importers.clothing import NOT_GARMENTS
from catalog.models import Category, Item
from catalog.selectors import category_ids_for_group, category_ids_with_descendants
from catalog.services.taxonomy import category_get_or_create, category_tree_ensure
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
# The clothing dataset's labels (../shared/datasets/README.md); the importer keeps every label but NOT_GARMENTS.
CLOTHING_LABELS = (
    "T-Shirt",
    "Longsleeve",
    "Pants",
    "Shoes",
    "Shirt",
    "Dress",
    "Outwear",
    "Shorts",
    "Hat",
    "Skirt",
    "Polo",
    "Undershirt",
    "Blazer",
    "Hoodie",
    "Body",
    "Top",
    "Blouse",
)
DOC_START, DOC_END = "<!-- taxonomy tables: start -->", "<!-- taxonomy tables: end -->"


def _subtree_paths(slug: str) -> set[str]:
    root = taxonomy.SLUG_PATHS[slug]
    return {path for path in taxonomy.CHAINS if path == root or path.startswith(f"{root} > ")}


# Pure data: no database.


def test_the_tree_has_unique_slugs_and_names_and_slug_shaped_slugs():
    from django.utils.text import slugify

    nodes = [node for _, node in taxonomy.walk()]
    assert len({n.slug for n in nodes}) == len(nodes)
    assert len({taxonomy.normalise(n.name) for n in nodes}) == len(nodes)  # a name alone is unambiguous
    assert all(n.slug == slugify(n.name) and len(n.slug) <= 80 and len(n.name) <= 80 for n in nodes)
    assert len(taxonomy.TREE) >= 10 and all(taxonomy.CHAINS[p][-1].slug == s for s, p in taxonomy.SLUG_PATHS.items())


def test_the_tree_is_two_levels_deep_at_most():
    # The browse filters and the admin show a category as "Parent > Child" from one join (select_related).
    assert max(len(chain) for chain in taxonomy.CHAINS.values()) == 2


def test_explicit_aliases_point_at_nodes_and_do_not_shadow_a_node_name_or_path():
    derived = {taxonomy.normalise(n.name) for _, n in taxonomy.walk()} | {
        taxonomy.normalise(p) for p in taxonomy.CHAINS
    }
    for alias, path in taxonomy.EXPLICIT_ALIASES.items():
        assert alias == taxonomy.normalise(alias), alias
        assert path in taxonomy.CHAINS, (alias, path)
        assert alias not in derived, alias


def test_every_garment_group_has_categories_and_its_ccp_labels_land_inside_them():
    from ml.garments import GROUP_LABELS

    assert set(taxonomy.GROUP_CATEGORIES) == set(GROUP_LABELS) == set(taxonomy.GROUP_NAMES)
    for group, labels in GROUP_LABELS.items():
        slugs = taxonomy.GROUP_CATEGORIES[group]
        assert slugs and all(slug in taxonomy.SLUG_PATHS for slug in slugs), group
        inside = set().union(*(_subtree_paths(slug) for slug in slugs))
        for label in labels:
            assert taxonomy.canonical_path(label) in inside, (group, label)


def test_every_clothing_dataset_label_maps_and_the_importer_skips_the_rest():
    assert not NOT_GARMENTS & set(CLOTHING_LABELS)
    assert {label: taxonomy.canonical_path(label) is not None for label in CLOTHING_LABELS} == dict.fromkeys(
        CLOTHING_LABELS, True
    )
    assert taxonomy.canonical_path("Outwear") == taxonomy.canonical_path("outerwear") == "Outerwear"
    assert taxonomy.canonical_path("Pants") == "Trousers"
    assert taxonomy.canonical_path("T-Shirt") == taxonomy.canonical_path("tee") == "Tops > T-shirts"


def test_names_and_paths_are_normalised_and_unknown_ones_are_none():
    assert taxonomy.canonical_path("  Tops>T-Shirts ") == "Tops > T-shirts"
    assert taxonomy.canonical_path("BOTTOMS  >  shorts") == "Shorts"
    assert taxonomy.canonical_path("Shoes > Sneakers") == taxonomy.canonical_path("sneakers") == "Shoes > Sneakers"
    assert taxonomy.canonical_path("Kids > Shoes") is None
    assert taxonomy.canonical_path("Capes and cloaks") is None
    assert taxonomy.canonical_split("Outwear > Parkas") == ("Outerwear", ("Parkas",))
    assert taxonomy.canonical_split("Kids > Shoes") == (None, ("Kids", "Shoes"))


def taxonomy_tables_markdown() -> str:
    """The doc's tables, from the data (docs/catalog.md "Categories: one taxonomy")."""
    lines = ["| garment group | canonical categories (each with its subcategories) |", "| --- | --- |"]
    for group, slugs in taxonomy.GROUP_CATEGORIES.items():
        lines.append(f"| `{group}` | {', '.join(f'{taxonomy.SLUG_PATHS[s]} (`{s}`)' for s in slugs)} |")
    lines += ["", "| canonical category | slug | also from (besides its own name and path) |", "| --- | --- | --- |"]
    for path, chain in taxonomy.CHAINS.items():
        aliases = ", ".join(f"`{a}`" for a, p in taxonomy.EXPLICIT_ALIASES.items() if p == path)
        lines.append(f"| {path} | `{chain[-1].slug}` | {aliases} |")
    return "\n".join(lines)


def test_the_catalog_doc_shows_the_tables_of_the_code():
    doc = (ROOT / "docs" / "catalog.md").read_text()
    assert DOC_START in doc and DOC_END in doc
    shown = doc.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
    assert shown == taxonomy_tables_markdown(), "docs/catalog.md is stale; paste:\n" + taxonomy_tables_markdown()


# The services and selectors on the real database.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [
        ("Outwear", "Outerwear", "Outerwear"),
        ("Bottoms > Shorts", "shorts", "Shorts"),
        ("Tops > T-Shirts", "t-shirt", "Tops > T-shirts"),
        ("Outerwear > Coats", "coat", "Outerwear > Coats"),
    ],
)
def test_the_importers_duplicate_names_resolve_to_one_category(one, other, expected):
    first, second = category_get_or_create(path=one), category_get_or_create(path=other)
    assert first.pk == second.pk and str(first) == expected
    assert first.slug == taxonomy.CHAINS[expected][-1].slug


@pytest.mark.django_db
def test_a_known_leading_part_puts_an_unknown_path_below_its_canonical_category():
    parkas = category_get_or_create(path="Outwear > Parkas")
    assert str(parkas) == "Outerwear > Parkas" and parkas.parent.slug == "outerwear"
    kids = category_get_or_create(path="Kids > Shoes")
    assert str(kids) == "Kids > Shoes" and kids.slug != "shoes"  # unknown: as given, never a canonical slug


@pytest.mark.django_db
def test_a_renamed_canonical_category_is_still_found_by_its_slug():
    tees = category_get_or_create(path="t-shirt")
    Category.objects.filter(pk=tees.pk).update(name="Tees & tanks")
    assert category_get_or_create(path="T-Shirt").pk == tees.pk


@pytest.mark.django_db
def test_category_tree_ensure_creates_every_node_once():
    first = category_tree_ensure()
    assert [c.slug for c in first] == list(taxonomy.SLUG_PATHS)
    assert [str(c) for c in first] == list(taxonomy.CHAINS)
    count = Category.objects.count()
    assert [c.pk for c in category_tree_ensure()] == [c.pk for c in first]
    assert Category.objects.count() == count


@pytest.mark.django_db
def test_category_ids_for_group_covers_the_group_subtrees():
    assert category_ids_for_group("no-such-group") == ()
    sneakers = category_get_or_create(path="Shoes > Sneakers")
    trail = category_get_or_create(path="Shoes > Sneakers > Trail")
    boots = category_get_or_create(path="boots")
    ids = category_ids_for_group("shoes")
    assert {sneakers.pk, sneakers.parent_id, trail.pk} <= set(ids) and boots.pk not in ids
    assert ids == category_ids_with_descendants([sneakers.parent_id])
    assert set(category_ids_for_group("boots")) == {boots.pk}


@pytest.mark.django_db
def test_category_ids_for_group_is_empty_before_its_categories_exist():
    Item.objects.update(category=None)
    for row in sorted(Category.objects.all(), key=lambda c: -len(str(c))):
        row.delete()
    assert category_ids_for_group("shoes") == ()
    f.make_category("Shoes")
    assert len(category_ids_for_group("shoes")) == 1


# Migration 0007 on a catalog with the importers' duplicates.

BEFORE, AFTER = ("catalog", "0006_snapshot_garments"), ("catalog", "0007_canonical_categories")


def _migrate(target) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate([target] if isinstance(target, tuple) else target)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_migration_0007_merges_duplicates_into_the_canonical_tree():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        executor = _migrate(BEFORE)
        apps = executor.loader.project_state([BEFORE]).apps
        OldCategory, OldItem = apps.get_model("catalog", "Category"), apps.get_model("catalog", "Item")
        OldItem.objects.all().delete()
        while OldCategory.objects.exists():  # leaves first: a parent is protected
            OldCategory.objects.filter(children__isnull=True).delete()

        def cat(name, slug, parent=None):
            return OldCategory.objects.create(name=name, slug=slug, parent=parent)

        def item(name, category):
            return OldItem.objects.create(
                name=name, category=category, image="x.jpg", width=1, height=1, content_hash=name
            )

        outwear, outerwear = cat("Outwear", "outwear"), cat("Outerwear", "outerwear")
        coat, coats = cat("coat", "coat"), cat("Coats", "coats", outerwear)
        shorts, bottoms = cat("shorts", "shorts"), cat("Bottoms", "bottoms")
        bottom_shorts = cat("Shorts", "shorts-2", bottoms)
        t_shirt, tops = cat("t-shirt", "t-shirt"), cat("Tops", "tops")
        tops_tees = cat("T-Shirts", "t-shirts", tops)
        parkas, kids = cat("Parkas", "parkas", outwear), cat("Kids wear", "kids-wear")
        mini = cat("Mini", "mini", kids)
        items = {
            "outwear": item("outwear", outwear),
            "coat": item("coat", coat),
            "coats": item("coats", coats),
            "shorts": item("shorts", shorts),
            "bottoms-shorts": item("bottoms-shorts", bottom_shorts),
            "t-shirt": item("t-shirt", t_shirt),
            "tops-tees": item("tops-tees", tops_tees),
            "parka": item("parka", parkas),
            "mini": item("mini", mini),
        }

        _migrate(AFTER)

        def category_of(key):
            return str(Item.objects.select_related("category__parent").get(pk=items[key].pk).category)

        assert {key: category_of(key) for key in items} == {
            "outwear": "Outerwear",
            "coat": "Outerwear > Coats",
            "coats": "Outerwear > Coats",
            "shorts": "Shorts",
            "bottoms-shorts": "Shorts",
            "t-shirt": "Tops > T-shirts",
            "tops-tees": "Tops > T-shirts",
            "parka": "Outerwear > Parkas",  # unknown child of a duplicate: moved with it
            "mini": "Kids wear > Mini",  # maps nowhere: untouched
        }
        # The canonical rows that existed are kept (their ids), the duplicates are gone.
        assert Category.objects.get(slug="outerwear").pk == outerwear.pk
        assert Category.objects.get(slug="coats").pk == coats.pk
        assert Category.objects.get(slug="shorts").pk == shorts.pk
        assert Category.objects.get(slug="t-shirts").pk == tops_tees.pk
        assert Category.objects.get(pk=parkas.pk).parent_id == outerwear.pk
        assert Category.objects.get(pk=mini.pk).parent_id == kids.pk
        gone = [outwear.pk, coat.pk, bottom_shorts.pk, t_shirt.pk]
        assert not Category.objects.filter(pk__in=gone).exists()
        assert Category.objects.filter(pk=bottoms.pk).exists()  # maps nowhere: left, though empty now
        assert not Item.objects.filter(category__isnull=True).exists()
        # Every canonical node exists, in its place.
        assert {c.slug: str(c) for c in Category.objects.filter(slug__in=taxonomy.SLUG_PATHS)} == taxonomy.SLUG_PATHS
    finally:
        _migrate(leaves)
