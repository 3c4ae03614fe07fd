"""The Content-Security-Policy header (django-csp) and pages that need nothing inline to work under it.

tests/browser/test_csp.py runs the same pages in Chromium and records the browser's own violations.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.recommender.conftest import catalog_rows, reco_catalog, rng  # noqa: F401 - the recommender's test catalog
from tests.test_hostile_input import Prober, url_routes

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "connect-src": {"'self'"},
    "font-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def directives(header: str) -> dict[str, set[str]]:
    """The header's directives (django-csp writes them in no fixed order)."""
    parts = [d.split() for d in header.split(";") if d.strip()]
    return {name: set(values) for name, *values in parts}


@pytest.mark.parametrize(
    ("debug", "url"),
    [
        (debug, url)
        for debug in (True, False)
        for url in ("/", "/api/items", "/api/docs", "/admin/login/", "/?style=%00")
    ]
    + [(False, "/no-such-page/")],  # django-csp leaves DEBUG's technical 404 page alone
)
def test_every_answer_carries_the_policy(client, settings, debug, url):
    settings.DEBUG = debug

    response = client.get(url)

    assert directives(response["Content-Security-Policy"]) == POLICY


def test_api_docs_load_swagger_ui_from_the_sites_static_files(client, db):
    html = client.get("/api/docs").content.decode()

    assert '<script src="/static/ninja/swagger-ui-bundle.js">' in html
    assert 'href="/static/ninja/swagger-ui.css"' in html
    assert "http://" not in html and "https://" not in html  # no CDN
    assert '"validatorUrl": null' in html


class _Inline(HTMLParser):
    """Script that runs inline (not a JSON data block), <style> elements and style/on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs and attrs.get("type") not in ("application/json",):
            self.found.append(f"inline <script> {attrs}")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"<{tag} {name}=...>" for name in attrs if name == "style" or name.startswith("on")]


def test_no_page_needs_inline_script_or_style(reco_catalog, admin_user):  # noqa: F811 - the imported fixture
    staff = Client()
    staff.force_login(admin_user)
    prober = Prober(staff_user=admin_user, real_ids={})
    pages = 0
    offenders = {}
    for route in url_routes():
        path = prober.real_path(route)
        response = staff.get(path)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        pages += 1
        inline = _Inline()
        inline.feed(response.content.decode())
        if inline.found:
            offenders[path] = inline.found
    assert pages > 20  # the shop, the API docs and the admin's lists and forms
    assert offenders == {}
