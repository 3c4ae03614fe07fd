"""Shopper-facing catalog pages: the two tabs' browse grids and the detail pages.

Thin adapters: parse the query string, call the recommender's selectors, render.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from recommender import selectors
from recommender.views import (
    FilterState,
    filter_state,
    garment_choice,
    items_for_snapshot_context,
    page_size,
    snapshots_for_item_context,
)


def _render_tab(
    request: HttpRequest, template: str, *, tab: str, state: FilterState, status: int = 200, **context
) -> HttpResponse:
    """A page under one of the two tabs, with the filter bar's state and options."""
    context.update(tab=tab, filter_state=state, options=selectors.filter_options())
    return render(request, template, context, status=max(state.status, status))


def _grid(request: HttpRequest, template: str, *, tab: str, rows: Callable[..., QuerySet]) -> HttpResponse:
    state = filter_state(request)
    page = Paginator(rows(filters=state.filters), page_size()).get_page(request.GET.get("page"))
    return _render_tab(request, template, tab=tab, state=state, page=page)


@require_GET
def snapshot_list(request: HttpRequest) -> HttpResponse:
    """Tab 1, "Snapshot -> items": the looks grid with filters, pagination and the upload box."""
    return _grid(request, "catalog/snapshot_list.html", tab="snapshots", rows=selectors.snapshot_list)


@require_GET
def item_list(request: HttpRequest) -> HttpResponse:
    """Tab 2, "Item -> snapshots": the items grid with filters, pagination and the upload box."""
    return _grid(request, "catalog/item_list.html", tab="items", rows=selectors.item_list)


@require_GET
def snapshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A look: the photo with its garments drawn over it, its metadata, the curated items, and live
    recommendations ("Shop the look", or "More like this piece" for ``?garment=N``)."""
    snapshot = selectors.snapshot_get(snapshot_id=pk)
    state = filter_state(request)
    looks = items_for_snapshot_context(snapshot_id=pk, filters=state.filters, choice=garment_choice(request))
    return _render_tab(
        request,
        "catalog/snapshot_detail.html",
        tab="snapshots",
        state=state,
        snapshot=snapshot,
        curated=[link.item for link in snapshot.post_items.all()],
        **looks,
    )


@require_GET
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An item and the looks that wear something like it."""
    item = selectors.item_get(item_id=pk)
    state = filter_state(request)
    return _render_tab(
        request,
        "catalog/item_detail.html",
        tab="items",
        state=state,
        item=item,
        **snapshots_for_item_context(item_id=pk, filters=state.filters),
    )
