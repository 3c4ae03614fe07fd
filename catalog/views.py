"""Shopper-facing catalog pages: the two tabs' browse grids and the detail pages.

Thin adapters: parse the query string, call the recommender's selectors, render.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from recommender import selectors
from recommender.views import filter_state, items_for_snapshot_context, page_size, snapshots_for_item_context


@require_GET
def snapshot_list(request: HttpRequest) -> HttpResponse:
    """Tab 1, "Snapshot -> items": the looks grid with filters, pagination and the upload box."""
    state = filter_state(request)
    page = Paginator(selectors.snapshot_list(filters=state.filters), page_size()).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/snapshot_list.html",
        {"tab": "snapshots", "page": page, "filter_state": state, "options": selectors.filter_options()},
    )


@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    """Tab 2, "Item -> snapshots": the items grid with filters, pagination and the upload box."""
    state = filter_state(request)
    page = Paginator(selectors.item_list(filters=state.filters), page_size()).get_page(request.GET.get("page"))
    return render(
        request,
        "catalog/item_list.html",
        {"tab": "items", "page": page, "filter_state": state, "options": selectors.filter_options()},
    )


@require_GET
def snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A look: the photo, its metadata, the curated items, and live recommendations."""
    snapshot = selectors.snapshot_get(snapshot_id=pk)
    state = filter_state(request)
    return render(
        request,
        "catalog/snapshot_detail.html",
        {
            "tab": "snapshots",
            "snapshot": snapshot,
            "curated": [link.item for link in snapshot.post_items.all()],
            "filter_state": state,
            "options": selectors.filter_options(),
            **items_for_snapshot_context(snapshot_id=pk, filters=state.filters),
        },
    )


@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An item and the looks that wear something like it."""
    item = selectors.item_get(item_id=pk)
    state = filter_state(request)
    return render(
        request,
        "catalog/item_detail.html",
        {
            "tab": "items",
            "item": item,
            "filter_state": state,
            "options": selectors.filter_options(),
            **snapshots_for_item_context(item_id=pk, filters=state.filters),
        },
    )
