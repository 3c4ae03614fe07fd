"""Shopper filters (style, category, brand slugs) resolved to ids, and the options to show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db.models import Count, QuerySet

from catalog.embedding_targets import target
from catalog.models import Brand, Category, Style
from catalog.selectors import category_ids_with_descendants


class UnknownFilter(ValueError):
    """A filter slug that names no style, category or brand."""

    def __init__(self, kind: str, slugs: list[str]) -> None:
        self.kind = kind
        self.slugs = slugs
        super().__init__(f"unknown {kind}: {', '.join(sorted(slugs))}")


class InvalidFilter(ValueError):
    """A filter value that cannot be a slug at all (a NUL byte, other characters, too long).

    Raised before any query: PostgreSQL refuses NUL in text, and no such value names a row.
    """

    def __init__(self, kind: str, value: str, max_length: int) -> None:
        self.kind = kind
        self.value = value[:100]  # enough to recognise it; the rest may be kilobytes
        self.max_length = max_length
        super().__init__(
            f"invalid {kind}: a slug has only letters, digits, '-' and '_', at most {max_length} characters"
        )


@dataclass(frozen=True)
class Filters:
    """Resolved filters: OR within one kind, AND across kinds; empty tuples mean no filter.

    ``category_ids`` already includes every descendant of the chosen categories.
    """

    style_ids: tuple[int, ...] = ()
    category_ids: tuple[int, ...] = ()
    brand_ids: tuple[int, ...] = ()
    slugs: dict[str, list[str]] = field(default_factory=dict, compare=False)

    @property
    def active(self) -> bool:
        return bool(self.style_ids or self.category_ids or self.brand_ids)


def owners_matching(kind: str, filters: Filters) -> QuerySet:
    """The images ``filters`` select: the one definition of a filter's meaning.

    The browse lists show this queryset, and the vector search compiles it into its WHERE
    (``recommender.selectors.similarity.sql``), so both select the same rows. Snapshots: published
    ones only; a snapshot is in a category when one of its curated items is. Rows may repeat
    (several matching styles): a list that shows them adds ``distinct()``.
    """
    owner = target(kind).owner
    qs = owner.objects.published() if kind == "snapshot" else owner.objects.all()
    if filters.style_ids:
        qs = qs.in_styles(filters.style_ids)
    if filters.category_ids:
        qs = qs.in_categories(filters.category_ids)
    if filters.brand_ids:
        qs = qs.in_brands(filters.brand_ids)
    return qs


FILTER_MODELS = {"style": Style, "category": Category, "brand": Brand}


def filter_slugs_clean(kind: str, slugs: Iterable[str] | str | None) -> list[str]:
    """The distinct, stripped slugs of one filter kind; :class:`InvalidFilter` for one that cannot be a slug.

    The one check of a shopper's filter values, for the pages and the API alike, made before any query.
    """
    if slugs is None:
        return []
    if isinstance(slugs, str):
        slugs = [slugs]
    cleaned = sorted({s.strip() for s in slugs if s and s.strip()})
    max_length = FILTER_MODELS[kind]._meta.get_field("slug").max_length
    for slug in cleaned:
        try:
            if len(slug) > max_length:
                raise ValidationError("too long")
            validate_slug(slug)  # also refuses NUL and every other control character
        except ValidationError as exc:
            raise InvalidFilter(kind, slug, max_length) from exc
    return cleaned


def _ids_for(model, kind: str, slugs: list[str]) -> tuple[int, ...]:
    if not slugs:
        return ()
    found = dict(model.objects.filter(slug__in=slugs).values_list("slug", "id"))
    missing = [s for s in slugs if s not in found]
    if missing:
        raise UnknownFilter(kind, missing)
    return tuple(sorted(found.values()))


def filters_resolve(
    *,
    styles: Iterable[str] | str | None = None,
    categories: Iterable[str] | str | None = None,
    brands: Iterable[str] | str | None = None,
) -> Filters:
    """Resolve slugs to ids; raises :class:`InvalidFilter` for a value that cannot be a slug (before any
    query) and :class:`UnknownFilter` for a slug that does not exist."""
    style_slugs = filter_slugs_clean("style", styles)
    category_slugs = filter_slugs_clean("category", categories)
    brand_slugs = filter_slugs_clean("brand", brands)
    category_ids = _ids_for(Category, "category", category_slugs)
    return Filters(
        style_ids=_ids_for(Style, "style", style_slugs),
        category_ids=category_ids_with_descendants(category_ids) if category_ids else (),
        brand_ids=_ids_for(Brand, "brand", brand_slugs),
        slugs={"style": style_slugs, "category": category_slugs, "brand": brand_slugs},
    )


@dataclass(frozen=True)
class FilterOptions:
    styles: list[Style]
    categories: list[Category]
    brands: list[Brand]


def filter_options() -> FilterOptions:
    """Every style and brand, and the categories holding items (in them or below them; parents before their
    children), for the filter form: the canonical tree's empty branches are left out."""
    categories = list(Category.objects.select_related("parent").annotate(item_total=Count("items")))
    by_parent: dict[int | None, list[Category]] = {}
    for category in categories:
        by_parent.setdefault(category.parent_id, []).append(category)
    ordered: list[Category] = []

    def held(category: Category) -> int:
        return category.item_total + sum(held(child) for child in by_parent.get(category.pk, []))

    def walk(parent_id: int | None, depth: int) -> None:
        for category in sorted(by_parent.get(parent_id, []), key=lambda c: c.name):
            if not held(category):
                continue
            category.depth = depth
            ordered.append(category)
            walk(category.pk, depth + 1)

    walk(None, 0)
    return FilterOptions(styles=list(Style.objects.all()), categories=ordered, brands=list(Brand.objects.all()))
