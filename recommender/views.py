"""Shopper pages of the recommender: live recommendation fragments and upload queries.

The browse grids and detail pages live in :mod:`catalog.views`; both use the helpers here.
Every page works as a plain GET/POST form without JavaScript; ``static/js/lookbook.js``
swaps the recommendation fragment in place when a filter changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from recommender import selectors
from recommender.uploads import DIRECTIONS, upload_recommendations

FILTER_KINDS = (("style", "styles"), ("category", "categories"), ("brand", "brands"))


@dataclass(frozen=True)
class FilterState:
    filters: selectors.Filters
    values: dict[str, str]  # the chosen slug per kind, for the form
    notice: str = ""
    status: int = 200  # 400 when a value could not be a slug at all: the page says so, as a client error


def filter_state(request: HttpRequest) -> FilterState:
    """The filters chosen in the query string (one slug per kind), checked by ``selectors.filters_resolve``.

    A kind whose slug is unknown (a stale link) is dropped with a notice; one whose value cannot be a
    slug (a NUL byte, other characters, too long) is dropped too, and the page is answered as a 400.
    """
    values = {param: (request.GET.get(param) or request.POST.get(param) or "").strip() for param, _ in FILTER_KINDS}
    notices: list[str] = []
    status = 200
    for _ in range(len(FILTER_KINDS) + 1):  # each failure drops one kind; with none left nothing can fail
        try:
            filters = selectors.filters_resolve(**{kw: values[param] or None for param, kw in FILTER_KINDS})
            return FilterState(filters=filters, values=values, notice=" ".join(notices), status=status)
        except (selectors.InvalidFilter, selectors.UnknownFilter) as exc:
            values[exc.kind] = ""
            notices.append(f"Ignored an {exc}.")
            if isinstance(exc, selectors.InvalidFilter):
                status = 400
    raise AssertionError("unreachable: no filter kind is left to fail")


def items_for_snapshot_context(*, snapshot_id: int, filters: selectors.Filters) -> dict:
    """Template context for the "recommended items" block (matches, or a polite reason)."""
    try:
        return {"matches": selectors.item_list_for_snapshot(snapshot_id=snapshot_id, filters=filters)}
    except selectors.RecommendationUnavailable as exc:
        return {"matches": [], "unavailable": exc.message}


def snapshots_for_item_context(*, item_id: int, filters: selectors.Filters) -> dict:
    try:
        return {"matches": selectors.snapshot_list_for_item(item_id=item_id, filters=filters)}
    except selectors.RecommendationUnavailable as exc:
        return {"matches": [], "unavailable": exc.message}


@require_GET
def snapshot_items(request: HttpRequest, pk: int) -> HttpResponse:
    """The recommended-items fragment of a snapshot page (fetched when a filter changes)."""
    selectors.snapshot_get(snapshot_id=pk, details=False)
    state = filter_state(request)
    context = {**items_for_snapshot_context(snapshot_id=pk, filters=state.filters), "filter_state": state}
    return render(request, "recommender/_item_matches.html", context, status=state.status)


@require_GET
def item_snapshots(request: HttpRequest, pk: int) -> HttpResponse:
    """The matching-snapshots fragment of an item page."""
    selectors.item_get(item_id=pk, details=False)
    state = filter_state(request)
    context = {**snapshots_for_item_context(item_id=pk, filters=state.filters), "filter_state": state}
    return render(request, "recommender/_snapshot_matches.html", context, status=state.status)


@require_http_methods(["GET", "POST"])
def query(request: HttpRequest) -> HttpResponse:
    """An uploaded photo -> recommendations page. 400 for a bad file, 503 with "try again" when unavailable."""
    if request.method == "GET":
        return redirect("catalog:home")
    direction = request.POST.get("direction", "")
    tab = "items" if direction == "item_to_snapshots" else "snapshots"
    state = filter_state(request)
    context = {"direction": direction, "tab": tab, "filter_state": state}
    upload = request.FILES.get("image")
    if state.status >= 400:
        return render(request, "recommender/query.html", {**context, "error": state.notice}, status=state.status)
    if direction not in DIRECTIONS:
        return render(request, "recommender/query.html", {**context, "error": "Choose what to search for."}, status=400)
    if upload is None:
        return render(request, "recommender/query.html", {**context, "error": "Choose a photo to upload."}, status=400)
    try:
        result = upload_recommendations(file=upload, direction=direction, filters=state.filters, name=upload.name)
    except ValidationError as exc:
        status = 413 if getattr(exc, "code", None) == "too_large" else 400
        return render(request, "recommender/query.html", {**context, "error": " ".join(exc.messages)}, status=status)
    except selectors.RecommendationUnavailable as exc:
        response = render(request, "recommender/unavailable.html", {**context, "message": exc.message}, status=503)
        response["Retry-After"] = "30"
        return response
    preview = _preview_data_uri(result.image)
    return render(request, "recommender/query.html", {**context, "result": result, "preview": preview})


def _preview_data_uri(image) -> str:
    """A small inline preview of the uploaded photo (it is not stored anywhere)."""
    import base64
    import io

    picture = image.open()
    picture.thumbnail((360, 480))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def page_size() -> int:
    return settings.CATALOG_PAGE_SIZE
