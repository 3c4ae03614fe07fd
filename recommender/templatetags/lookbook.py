"""Template helpers for shopper pages: ``{% load lookbook %}``."""

from __future__ import annotations

from django import template
from django.http import QueryDict

from recommender import presenters

register = template.Library()


@register.filter
def thumb(record) -> str:
    """``{{ item|thumb }}``: the thumbnail URL (falls back to the picture)."""
    return presenters.thumbnail_url(record)


@register.filter
def page(record) -> str:
    """``{{ item|page }}``: the record's detail page."""
    return presenters.page_url(record)


@register.filter
def percent(score: float) -> str:
    """A cosine similarity as a match percentage for shoppers (clamped to 0..100)."""
    return f"{max(0.0, min(1.0, float(score))) * 100:.0f}%"


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (``page=3``); empty values removed."""
    query: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def garment_of(matched, snapshot_id):
    """``{{ matched|garment_of:snapshot.pk }}``: the garment a look matched by, or None."""
    return (matched or {}).get(snapshot_id)


CARD_LOOK_ASPECT = 2 / 3  # width / height of a look card's thumbnail frame (.thumb--look, object-fit: cover)


@register.filter
def card_box(garment, snapshot) -> dict[str, float]:
    """``{{ garment|card_box:snapshot }}``: the garment's box in percent of a look card's frame, which crops
    the photo to 2:3 around its centre (``object-fit: cover``), clipped to the frame."""
    left, top, right, bottom = garment.box
    width, height = getattr(snapshot, "width", 0) or 0, getattr(snapshot, "height", 0) or 0
    aspect = width / height if width and height else CARD_LOOK_ASPECT
    if aspect > CARD_LOOK_ASPECT:  # wider than the frame: the sides are cut off
        shown = CARD_LOOK_ASPECT / aspect
        left, right = ((v - (1 - shown) / 2) / shown for v in (left, right))
    elif aspect < CARD_LOOK_ASPECT:  # taller: the top and bottom are cut off
        shown = aspect / CARD_LOOK_ASPECT
        top, bottom = ((v - (1 - shown) / 2) / shown for v in (top, bottom))
    left, top, right, bottom = (min(1.0, max(0.0, v)) * 100 for v in (left, top, right, bottom))
    return {"x": round(left, 2), "y": round(top, 2), "width": round(right - left, 2), "height": round(bottom - top, 2)}


@register.filter
def svg_box(box) -> dict[str, str]:
    """``{{ garment.box|svg_box }}``: a (left, top, right, bottom) box of fractions as SVG rect attributes in
    the overlays' 0..1000 viewBox."""
    left, top, right, bottom = (float(v) * 1000 for v in box)
    return {"x": f"{left:.1f}", "y": f"{top:.1f}", "width": f"{right - left:.1f}", "height": f"{bottom - top:.1f}"}


@register.filter
def box_value(box) -> str:
    """``{{ garment.box|box_value }}``: the ``box`` form value of a piece of an upload, ``l,t,r,b`` fractions."""
    return ",".join(f"{float(v):.4f}" for v in box)


@register.filter
def percent_value(fraction) -> str:
    """``{{ 0.255|percent_value }}`` -> ``"25.5"``: a fraction of the photo for a percent input."""
    return f"{float(fraction) * 100:.1f}"
