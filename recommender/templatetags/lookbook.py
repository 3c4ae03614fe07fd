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
