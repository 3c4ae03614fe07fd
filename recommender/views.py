"""Shopper pages of the recommender: live recommendation fragments and upload queries.

The browse grids and detail pages live in :mod:`catalog.views`; both use the helpers here.
Every page works as a plain GET/POST form without JavaScript; ``static/js/lookbook.js``
swaps the recommendation fragment in place when a filter changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from recommender import selectors
from recommender.selectors.similarity.pieces import (
    GARMENT_NAMES,
    GarmentNotFound,
    garment_list,
    item_list_for_garment,
    look_picks,
    matched_garments,
    percent_box,
)
from recommender.uploads import DIRECTIONS, box_parse, upload_recommendations

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


@dataclass(frozen=True)
class GarmentChoice:
    """The ``?garment=N`` of a look's page: a piece number (1-based), or None for the whole look."""

    number: int | None = None
    error: str = ""
    status: int = 200


def garment_choice(request: HttpRequest) -> GarmentChoice:
    """``?garment=N`` checked for its form only (a positive number of at most 3 digits; 400 otherwise);
    whether the look has that piece is the selector's answer (404)."""
    raw = (request.GET.get("garment") or "").strip()
    if not raw:
        return GarmentChoice()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) >= 1):
        return GarmentChoice(error="A piece of a look is chosen by its number (1, 2, ...).", status=400)
    return GarmentChoice(number=int(raw))


def items_for_snapshot_context(
    *, snapshot_id: int, filters: selectors.Filters, choice: GarmentChoice | None = None
) -> dict:
    """Template context for a look's recommendations: its ``garments`` (drawn over the photo) and

    - a chosen garment: ``piece`` and ``matches``, the items for that piece ("More like this piece");
    - else, a look with garments: ``picks``, one item per garment ("Shop the look");
    - else the whole photo's ``matches``;

    or ``unavailable``, a polite reason. ``garment_error`` / ``status`` when the choice is not a piece of this
    look (the whole look is answered below the message).
    """
    choice = choice or GarmentChoice()
    context: dict = {"garments": [], "picks": [], "matches": [], "piece": None, "status": choice.status}
    if choice.error:
        context["garment_error"] = choice.error
    try:
        version = selectors.model_version_active()
        if version is None:
            raise selectors.NoActiveModel()
        garments = garment_list(snapshot_id=snapshot_id, model_version=version)
        context["garments"] = garments
        if choice.number is not None:
            try:
                piece, matches = item_list_for_garment(
                    snapshot_id=snapshot_id, garment_number=choice.number, filters=filters, model_version=version
                )
                context.update(piece=piece, matches=matches)
                return context
            except GarmentNotFound:
                context.update(garment_error=f"This look has no piece number {choice.number}.", status=404)
        if garments:
            _, context["picks"] = look_picks(
                snapshot_id=snapshot_id, filters=filters, model_version=version, look_garments=garments
            )
        if context["picks"]:
            context["shop_the_look"] = True
        else:  # no garments, or none of their kinds passes the filters: the whole photo's answer
            context["matches"] = selectors.item_list_for_snapshot(
                snapshot_id=snapshot_id, filters=filters, model_version=version
            )
    except selectors.RecommendationUnavailable as exc:
        context["unavailable"] = exc.message
    return context


def snapshots_for_item_context(*, item_id: int, filters: selectors.Filters) -> dict:
    """The looks for an item, with ``matched``: on each look, the garment the item matched by (when known)."""
    try:
        version = selectors.model_version_active()
        if version is None:
            raise selectors.NoActiveModel()
        matches = selectors.snapshot_list_for_item(item_id=item_id, filters=filters, model_version=version)
        matched = matched_garments(item_id=item_id, matches=matches, model_version=version)
        return {"matches": matches, "matched": matched}
    except selectors.RecommendationUnavailable as exc:
        return {"matches": [], "unavailable": exc.message}


@require_GET
def snapshot_items(request: HttpRequest, pk: int) -> HttpResponse:
    """The recommended-items fragment of a snapshot page (fetched when a filter changes)."""
    selectors.snapshot_get(snapshot_id=pk, details=False)
    state = filter_state(request)
    looks = items_for_snapshot_context(snapshot_id=pk, filters=state.filters, choice=garment_choice(request))
    context = {**looks, "filter_state": state}
    return render(request, "recommender/_item_matches.html", context, status=max(state.status, looks["status"]))


@require_GET
def item_snapshots(request: HttpRequest, pk: int) -> HttpResponse:
    """The matching-snapshots fragment of an item page."""
    selectors.item_get(item_id=pk, details=False)
    state = filter_state(request)
    context = {**snapshots_for_item_context(item_id=pk, filters=state.filters), "filter_state": state}
    return render(request, "recommender/_snapshot_matches.html", context, status=state.status)


BOX_PERCENT_FIELDS = ("box_left", "box_top", "box_right", "box_bottom")
GROUP_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def box_and_group(data) -> tuple[list[float] | None, str | None]:
    """The piece of an upload to search: ``box=l,t,r,b`` (fractions of the photo: a detected garment the
    shopper tapped, or the box they drew) or the four ``box_left`` .. ``box_bottom`` fields in percent (the
    drawing form without JavaScript), and ``group``, a garment group's slug. ``ValueError`` for a malformed
    one; whether the box lies inside the photo is ``uploads.box_clean``'s answer."""
    group = (data.get("group") or "").strip() or None
    if group is not None and not (GROUP_PATTERN.fullmatch(group) and group in GARMENT_NAMES):
        raise ValueError("Unknown kind of piece: choose one of the pieces found on your photo.")
    box = box_parse(data.get("box"))
    if box is None:
        percents = [(data.get(name) or "").strip() for name in BOX_PERCENT_FIELDS]
        if any(percents):
            box = box_parse(",".join(percents), scale=100.0)
    return box, group


@require_http_methods(["GET", "POST"])
def query(request: HttpRequest) -> HttpResponse:
    """An uploaded photo -> recommendations page. 400 for a bad file, box or group; 503 with "try again"
    when unavailable. A street photo answers with its garments, one pick per garment and the whole photo's
    list; with ``box`` (and ``group``) the items for that piece only."""
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
    try:
        box, group = box_and_group(request.POST)
    except ValueError as exc:
        return render(request, "recommender/query.html", {**context, "error": str(exc)}, status=400)
    if upload is None:
        return render(request, "recommender/query.html", {**context, "error": "Choose a photo to upload."}, status=400)
    try:
        result = upload_recommendations(
            file=upload, direction=direction, filters=state.filters, name=upload.name, box=box, group=group
        )
    except ValidationError as exc:
        status = 413 if getattr(exc, "code", None) == "too_large" else 400
        return render(request, "recommender/query.html", {**context, "error": " ".join(exc.messages)}, status=status)
    except ValueError as exc:  # a box outside the photo, too small, or an unknown group
        return render(request, "recommender/query.html", {**context, "error": str(exc)}, status=400)
    except selectors.RecommendationUnavailable as exc:
        response = render(request, "recommender/unavailable.html", {**context, "message": exc.message}, status=503)
        response["Retry-After"] = "30"
        return response
    preview = _preview_data_uri(result.image)
    piece_name = (GARMENT_NAMES.get(group, "piece") if group else "your box") if box is not None else ""
    return render(
        request,
        "recommender/query.html",
        {**context, "result": result, "preview": preview, "piece_name": piece_name, "box": percent_box(result.box)},
    )


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
