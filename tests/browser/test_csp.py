"""The Content-Security-Policy in a real browser: the shop, the admin and /api/docs work under it, offline.

Every request that leaves the live server is aborted (and recorded), and the page records each
``securitypolicyviolation`` event, so a CDN asset, an inline script or an inline style shows up here.
"""

from __future__ import annotations

import pytest

from tests.recommender.conftest import catalog_rows, reco_catalog, rng  # noqa: F401 - the recommender's test catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


class Watched:
    """A page whose off-site requests are aborted and whose policy violations are collected."""

    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.offsite: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.context.route("**/*", self._route)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.base_url = base_url

    def _route(self, route) -> None:
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort()

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations")

    def assert_clean(self) -> None:
        assert self.violations() == []
        assert self.offsite == []
        assert self.errors == []


@pytest.fixture
def watched(page, live_server) -> Watched:
    return Watched(page, live_server.url)


def test_api_docs_show_swagger_ui_from_the_sites_own_files(watched):
    response = watched.page.goto("/api/docs")

    assert "script-src 'self'" in response.headers["content-security-policy"]
    watched.page.wait_for_selector(".swagger-ui .opblock")
    assert "Lookbook API" in watched.page.locator(".swagger-ui .info .title").inner_text()
    assert watched.page.locator(".swagger-ui .opblock").count() >= 5
    watched.assert_clean()


def test_shop_pages_and_the_live_filter_work_under_the_policy(watched, reco_catalog):  # noqa: F811 - imported
    look = reco_catalog["looks"][0]
    page = watched.page

    for url in ["/", "/items/", f"/items/{reco_catalog['items'][0].pk}/"]:
        page.goto(url)
        assert page.locator("html.js").count() == 1  # static/js/lookbook.js ran
        watched.assert_clean()
    page.goto(f"/snapshots/{look.pk}/")
    before = page.locator("#recommendations").inner_html()
    page.locator("#recommendations").locator("xpath=..").locator("select[name=style]").select_option("boho")
    page.wait_for_url("**style=boho**")
    assert page.locator("#recommendations").inner_html() != before
    watched.assert_clean()


def test_the_admin_works_under_the_policy(watched, admin_user):
    from django_celery_beat.models import CrontabSchedule

    from tests import factories as f

    CrontabSchedule.objects.create(minute="0", hour="4", day_of_week="*", day_of_month="*", month_of_year="*")
    page = watched.page

    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    f.make_item("Blue scarf")
    page.goto("/admin/catalog/item/")
    thumb = page.locator("img.admin-thumb").first
    assert thumb.evaluate("img => getComputedStyle(img).maxWidth") == "80px"  # static/css/admin.css applied
    page.goto("/admin/catalog/snapshot/add/")
    page.click(".add-row a")  # the inline formset's JavaScript adds a row
    assert page.locator(".dynamic-post_items").count() >= 1
    watched.assert_clean()

    # django-celery-beat's crontab help, whose script this project moved out of the page.
    page.goto("/admin/django_celery_beat/periodictask/add/")
    page.select_option("#id_crontab", index=1)
    assert "Translation: At 04:00" in page.locator(".field-crontab .help").inner_text()
    watched.assert_clean()
