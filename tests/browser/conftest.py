"""Headless Debian Chromium driven by Playwright (PyPI) against pytest-django's live server.

Playwright's own browser download does not work offline, so the system ``/usr/bin/chromium``
is used (``LOOKBOOK_CHROMIUM`` overrides). Without it the tests skip locally and FAIL in CI
(``CI=true``). Screenshots go to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from tests.recommender.conftest import (  # noqa: F401 - re-exported fixtures
    Catalog,
    _forget_seen_query_workers,
    query_worker,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path(os.environ.get("LOOKBOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = f"Chromium is missing at {CHROMIUM} (apt-get install chromium, or set LOOKBOOK_CHROMIUM)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium_path):
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by fixtures
    # in the same thread are still synchronous, so Django's async-safety guard is relaxed here.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, settings):
    settings.ROOT_URLCONF = "tests.browser.urls"
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    ARTIFACTS.mkdir(exist_ok=True)

    def take(name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def shop(datasets_dir, transactional_db):
    """A small shop with real pictures: 24 product photos (3 styles) and 8 street looks, with known vectors.

    Boho items point along the first axes, street items elsewhere, so a style filter visibly
    changes a look's recommendations.
    """
    from catalog.validators import validate_image_upload
    from tests import factories as f

    rng = np.random.default_rng(7)
    catalog = Catalog()
    version = catalog.version(dim=8, max_regions=2)
    boho, street, classic = f.make_style("Boho"), f.make_style("Street"), f.make_style("Classic")
    tops = f.make_category("Tops")
    acme = f.make_brand("Acme")
    with open(datasets_dir / "clothing-dataset" / "images.csv") as handle:
        rows = [r for r in csv.DictReader(handle)][:24]
    items = []
    for n, row in enumerate(rows):
        style = (boho, street, classic)[n % 3]
        path = datasets_dir / "clothing-dataset" / "images" / f"{row['image']}.jpg"
        items.append(
            f.make_item(
                row["label"],
                image=validate_image_upload(path),
                styles=[style],
                category=tops,
                brand=acme if n % 2 else None,
                price="39.90",
            )
        )
    looks = []
    for n in range(1, 9):
        path = datasets_dir / "ccp" / "photos" / f"{n:04d}.jpg"
        looks.append(
            f.make_snapshot(
                f"Look {n}",
                image=validate_image_upload(path),
                styles=[(boho, street)[n % 2]],
                items=items[n : n + 2],
                person_name=f"Person {n}",
            )
        )
    # Street/classic items sit near the query direction, boho ones further away.
    vectors = []
    for n, item in enumerate(items):
        v = rng.normal(scale=0.3, size=8)
        v[0] += 1.0 if n % 3 else -0.2
        vectors.append((item, v))
    catalog.item_vectors(version, vectors)
    for look in looks:
        catalog.snapshot_vectors(version, look, [[1, *rng.normal(scale=0.2, size=7)], rng.normal(size=8)])
    return {"version": version, "items": items, "looks": looks, "boho_ids": {i.pk for i in items[::3]}}
