"""The search planner is a pure decision: checked here without a database."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.models import ModelVersion
from recommender.selectors.filters import Filters
from recommender.selectors.similarity.planner import FilterCount, Strategy, needs_filter_count, plan_search
from recommender.selectors.similarity.types import Query, SearchOptions

OPTIONS = SearchOptions(
    ef_search=40,
    ef_search_snapshots=200,
    iterative_scan="strict_order",
    max_scan_tuples=20000,
    exact_below_rows=2000,
    ef_search_style_factor=0.4,
)
VERSION = ModelVersion(pk=3, dim=8, max_regions=4)


def query(kind="item", *, vectors=None, source=None, filters=Filters(), k=6, regions=None) -> Query:
    return Query(
        kind=kind,
        model_version=VERSION,
        k=k,
        filters=filters,
        source=source,
        regions=regions,
        vectors=None if vectors is None else np.ones((vectors, 8), dtype=np.float32),
    )


def test_snapshot_to_items_walks_the_item_graph_with_k_rows_per_region():
    plan = plan_search(query(source=("snapshot", 1)), OPTIONS)
    assert plan.strategy is Strategy.WALK
    assert (plan.probe_rows, plan.walk_rows, plan.ef_search, plan.candidate_factor) == (6, 6, 40, 1)
    assert plan.session_settings == {
        "hnsw.ef_search": "40",
        "hnsw.iterative_scan": "strict_order",
        "hnsw.max_scan_tuples": "20000",
    }
    assert plan.exact_fallback and plan.shares == ()


def test_item_to_snapshots_with_one_vector_is_a_stream_that_grows_on_demand():
    for q in (query("snapshot", source=("item", 1)), query("snapshot", vectors=1)):
        plan = plan_search(q, OPTIONS, helpers=1, outside_transaction=True)
        assert plan.strategy is Strategy.STREAM
        assert (plan.probe_rows, plan.walk_rows, plan.ef_search) == (24, 0, 200)  # k x 4 regions
        assert plan.shares == ()  # one query vector: nothing to share


def test_without_iterative_scan_the_walk_is_wide_enough_for_every_row_it_returns():
    options = SearchOptions(**{**OPTIONS.__dict__, "iterative_scan": "off"})
    plan = plan_search(query("snapshot", source=("item", 1), k=100), options)
    assert plan.walk_rows == 400 and plan.session_settings["hnsw.ef_search"] == "400"
    wide = plan_search(query("snapshot", source=("item", 1), k=300), options)
    assert wide.session_settings["hnsw.ef_search"] == "1000"  # pgvector's ceiling


def test_relaxed_order_over_fetches_twice_but_an_exact_scan_does_not():
    options = SearchOptions(**{**OPTIONS.__dict__, "iterative_scan": "relaxed_order"})
    assert plan_search(query(vectors=3), options).candidate_factor == 2
    exact = plan_search(query(vectors=3), options, exact=True)
    assert exact.strategy is Strategy.EXACT and exact.candidate_factor == 1 and not exact.exact_fallback


def test_outside_a_transaction_the_query_vectors_are_shared_interleaved():
    plan = plan_search(query(vectors=5), OPTIONS, helpers=1, outside_transaction=True)
    assert plan.strategy is Strategy.SHARED
    assert [len(share.vectors) for share in plan.shares] == [3, 2]
    stored = plan_search(query(source=("snapshot", 9), regions=(0, 2, 3)), OPTIONS, helpers=2, outside_transaction=True)
    assert [share.regions for share in stored.shares] == [(0,), (2,), (3,)]
    whole = plan_search(query(source=("snapshot", 9)), OPTIONS, helpers=1, outside_transaction=True)
    assert [share.regions for share in whole.shares] == [(0, 2), (1, 3)]  # every stored region
    assert plan_search(query(vectors=5), OPTIONS, helpers=1).strategy is Strategy.WALK  # inside a transaction
    assert plan_search(query(vectors=5), OPTIONS, outside_transaction=True).strategy is Strategy.WALK  # no helper


@pytest.mark.parametrize("rows, strategy", [(1999, Strategy.EXACT), (2000, Strategy.WALK)])
def test_a_filter_count_below_the_threshold_scans_exactly(rows, strategy):
    q = query(source=("snapshot", 1), filters=Filters(category_ids=(4,)))
    assert needs_filter_count(q, OPTIONS, exact=False)
    plan = plan_search(q, OPTIONS, count=FilterCount(rows=rows, style_graph=False))
    assert plan.strategy is strategy
    assert plan.enable_sort is (strategy is Strategy.EXACT)
    assert ("enable_sort" in plan.session_settings) is (strategy is Strategy.WALK)


def test_a_few_matching_rows_turn_a_stream_into_an_exact_scan():
    q = query("snapshot", source=("item", 1), filters=Filters(style_ids=(2,)))
    assert plan_search(q, OPTIONS, count=FilterCount(rows=10, style_graph=False)).strategy is Strategy.EXACT


def test_a_walk_on_a_style_graph_narrows_by_the_style_factor():
    q = query(source=("snapshot", 1), filters=Filters(style_ids=(2,)))
    assert plan_search(q, OPTIONS, count=FilterCount(rows=2000, style_graph=True)).ef_search == 16
    back = query("snapshot", source=("item", 1), filters=Filters(style_ids=(2,)))
    assert plan_search(back, OPTIONS, count=FilterCount(rows=2000, style_graph=True)).ef_search == 80
    assert plan_search(back, OPTIONS, count=FilterCount(rows=2000, style_graph=False)).ef_search == 200


def test_no_count_without_filters_or_when_asked_for_an_exact_scan():
    assert not needs_filter_count(query(vectors=2), OPTIONS, exact=False)
    assert not needs_filter_count(query(vectors=2, filters=Filters(brand_ids=(1,))), OPTIONS, exact=True)
    off = SearchOptions(**{**OPTIONS.__dict__, "exact_below_rows": 0})
    assert not needs_filter_count(query(vectors=2, filters=Filters(brand_ids=(1,))), off, exact=False)
