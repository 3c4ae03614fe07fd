"""The filter form's options: every style and brand, and the categories that hold items."""

from __future__ import annotations

import pytest

from catalog.services.taxonomy import category_get_or_create, category_tree_ensure
from recommender.selectors import filter_options
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_only_categories_holding_items_in_them_or_below_are_offered_parents_first():
    category_tree_ensure()
    sneakers = category_get_or_create(path="Shoes > Sneakers")
    skirts = category_get_or_create(path="skirt")
    f.make_item(category=sneakers)
    f.make_item(category=skirts)
    offered = [(c.slug, c.depth) for c in filter_options().categories]
    assert offered == [("shoes", 0), ("sneakers", 1), ("skirts", 0)]
