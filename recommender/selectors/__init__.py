"""Read-only queries of the recommender: similarity search, browse lists, filters.

Import from here: ``from recommender.selectors import item_list_for_snapshot``.
"""

from recommender.selectors.browse import item_get, item_list, snapshot_get, snapshot_list
from recommender.selectors.filters import (
    FilterOptions,
    Filters,
    InvalidFilter,
    UnknownFilter,
    category_ids_with_descendants,
    filter_options,
    filters_resolve,
)
from recommender.selectors.similarity import (
    ItemMatch,
    NoActiveModel,
    NotEmbedded,
    RecommendationUnavailable,
    SearchOptions,
    SnapshotMatch,
    item_list_for_snapshot,
    model_version_active,
    nearest_ids,
    query_region_rows,
    similar_sql,
    snapshot_list_for_item,
    vector_cursor,
)

__all__ = [
    "FilterOptions",
    "Filters",
    "InvalidFilter",
    "ItemMatch",
    "NoActiveModel",
    "NotEmbedded",
    "RecommendationUnavailable",
    "SearchOptions",
    "SnapshotMatch",
    "UnknownFilter",
    "category_ids_with_descendants",
    "filter_options",
    "filters_resolve",
    "item_get",
    "item_list",
    "item_list_for_snapshot",
    "model_version_active",
    "nearest_ids",
    "query_region_rows",
    "similar_sql",
    "vector_cursor",
    "snapshot_get",
    "snapshot_list",
    "snapshot_list_for_item",
]
