"""Styles, brands, tags and categories by name (importers and the manifest create them on first use)."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from catalog import taxonomy
from catalog.models import Brand, Category, Style, Tag

CATEGORY_PATH_SEPARATOR = ">"


def _unique_slug(model, name: str, max_length: int) -> str:
    """A free slug for ``name``; a category never takes a canonical node's slug (it names that node)."""
    reserved = taxonomy.SLUG_PATHS if model is Category else {}
    base = (slugify(name) or "x")[: max_length - 6]
    slug, n = base, 2
    while slug in reserved or model._default_manager.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _named_get_or_create(model, name: str):
    name = " ".join(name.split())
    if not name:
        raise ValueError(f"a {model._meta.verbose_name} name must not be empty")
    row = model._default_manager.filter(name__iexact=name).first()
    if row is None:
        row = model._default_manager.filter(slug=slugify(name)).first()
    if row is None:
        row = model(name=name, slug=_unique_slug(model, name, model._meta.get_field("slug").max_length))
        row.full_clean()
        row.save()
    return row


def style_get_or_create(*, name: str) -> Style:
    """The style called ``name`` (case-insensitive), created if missing."""
    return _named_get_or_create(Style, name)


def brand_get_or_create(*, name: str) -> Brand:
    """The brand called ``name`` (case-insensitive), created if missing."""
    return _named_get_or_create(Brand, name)


def tag_get_or_create(*, name: str) -> Tag:
    """The tag called ``name`` (case-insensitive), created if missing."""
    return _named_get_or_create(Tag, name)


def _canonical_category_get_or_create(path: str) -> Category:
    """The row of the canonical ``path``, level by level: by name under its canonical parent, else by its
    stable slug (a node renamed or moved in the admin), else created with that slug."""
    parent: Category | None = None
    for node in taxonomy.chain_of(path):
        found = Category.objects.filter(parent=parent, name__iexact=node.name).first()
        if found is None:
            found = Category.objects.filter(slug=node.slug).first()
        if found is None:
            found = Category(name=node.name, parent=parent, slug=node.slug)
            found.full_clean()
            found.save()
        parent = found
    return parent


@transaction.atomic
def category_get_or_create(*, path: str) -> Category:
    """The category at ``path`` ("Shoes > Sneakers"), creating missing levels.

    A name or path the canonical taxonomy knows (``catalog.taxonomy``: CCP's "t-shirt", the
    clothing dataset's "T-Shirt", a manifest's "Tops > T-Shirts") is its canonical category; a path
    whose leading levels it knows ("Outwear > Parkas") goes below that category. Other paths are
    created as given, and a lone unknown top-level name matches an existing category with the same
    slug at any level.
    """
    names = [" ".join(part.split()) for part in path.split(CATEGORY_PATH_SEPARATOR)]
    if not all(names):
        raise ValueError(f"bad category path {path!r}")
    canonical, rest = taxonomy.canonical_split(CATEGORY_PATH_SEPARATOR.join(names))
    parent = _canonical_category_get_or_create(canonical) if canonical is not None else None
    for depth, name in enumerate(rest):
        found = Category.objects.filter(parent=parent, name__iexact=name).first()
        if found is None and parent is None and depth == 0 and len(rest) == 1:
            found = Category.objects.filter(slug=slugify(name)).first()
        if found is None:
            found = Category(name=name, parent=parent, slug=_unique_slug(Category, name, 80))
            found.full_clean()
            found.save()
        parent = found
    return parent


@transaction.atomic
def category_tree_ensure() -> list[Category]:
    """Every canonical category (``catalog.taxonomy.TREE``), created where missing, in tree order; idempotent."""
    return [_canonical_category_get_or_create(path) for path in taxonomy.CHAINS]
