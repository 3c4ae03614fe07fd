"""A filter means one thing: the browse lists and the vector search select the same rows, for every
filter kind and combination (the search compiles the browse queryset into its WHERE)."""

from __future__ import annotations

import itertools

import pytest

from catalog.models import PostItem
from recommender.selectors import Filters, SearchOptions, item_list, nearest_ids, snapshot_list
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def varied_catalog(catalog_rows, rng):
    """Items and looks spread over 3 styles, a 2-level category tree and 2 brands, some looks unpublished."""
    version = catalog_rows.version(dim=8, max_regions=2)
    styles = [f.make_style(name) for name in ("Boho", "Street", "Chic")]
    tops = f.make_category("Tops")
    shirts, tees = f.make_category("Shirts", parent=tops), f.make_category("Tees", parent=tops)
    shoes = f.make_category("Shoes")
    brands = [f.make_brand("Acme"), f.make_brand("Zed")]
    items = []
    for n, (category, brand) in enumerate(itertools.product([None, tops, shirts, tees, shoes], [None, *brands])):
        item_styles = [styles[n % 3]] + ([styles[(n + 1) % 3]] if n % 4 == 0 else [])
        items += catalog_rows.items(2, category=category, brand=brand, styles=item_styles if n % 5 else [])
    catalog_rows.item_vectors(version, [(item, rng.normal(size=8)) for item in items])
    looks = []
    for n in range(12):
        look_styles = [styles[n % 3]] + ([styles[(n + 2) % 3]] if n % 3 == 0 else [])
        look_brands = [brands[n % 2]] if n % 4 else []
        looks += catalog_rows.snapshots(
            1, styles=look_styles if n % 6 else [], brands=look_brands, is_published=n % 5 != 4
        )
    for n, look in enumerate(looks):
        catalog_rows.snapshot_vectors(version, look, rng.normal(size=(2, 8)).tolist())
        PostItem.objects.bulk_create(
            [PostItem(snapshot=look, item=item, position=p) for p, item in enumerate(items[n * 3 : n * 3 + 2 + n % 2])]
        )
    return {"version": version, "styles": styles, "categories": [tops, shirts, shoes], "brands": brands}


def _filter_sets(catalog):
    """Every combination of no filter, one value or two values per kind (categories by slug: a parent
    stands for its subtree)."""
    from recommender.selectors import filters_resolve

    choices = {
        "styles": [None, [catalog["styles"][0].slug], [s.slug for s in catalog["styles"][1:]]],
        "categories": [None, [catalog["categories"][0].slug], [c.slug for c in catalog["categories"][1:]]],
        "brands": [None, [catalog["brands"][0].slug], [b.slug for b in catalog["brands"]]],
    }
    for values in itertools.product(*choices.values()):
        yield filters_resolve(**dict(zip(choices, values, strict=True)))


@pytest.mark.parametrize("walk", [False, True], ids=["exact scan", "graph walk"])
def test_the_browse_lists_and_the_vector_search_select_the_same_rows(varied_catalog, rng, walk):
    version = varied_catalog["version"]
    options = SearchOptions.from_settings(exact_below_rows=0) if walk else None
    query = [rng.normal(size=8).tolist()]
    checked = 0
    for filters in _filter_sets(varied_catalog):
        browse = {
            "item": set(item_list(filters=filters).values_list("pk", flat=True)),
            "snapshot": set(snapshot_list(filters=filters).values_list("pk", flat=True)),
        }
        for kind, expected in browse.items():
            found = nearest_ids(
                kind=kind,
                model_version=version,
                k=500,
                filters=filters,
                query_vectors=query,
                options=options,
                exact=not walk,
            )
            assert {target for target, _ in found} == expected, (kind, filters)
            checked += bool(expected)
    assert checked > 20  # most combinations select something: the comparison is not of empty sets


def test_no_filter_still_hides_unpublished_looks_from_both(varied_catalog, rng):
    version = varied_catalog["version"]
    looks = set(snapshot_list().values_list("pk", flat=True))
    found = nearest_ids(kind="snapshot", model_version=version, k=500, filters=Filters(), query_vectors=[[1.0] * 8])
    assert {target for target, _ in found} == looks
    assert len(looks) == 10  # 2 of the 12 are unpublished
