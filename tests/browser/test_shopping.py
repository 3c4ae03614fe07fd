"""A shopper in a real (headless) browser: browse, filter live, upload on both tabs."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def result_ids(page, kind: str) -> list[int]:
    return [
        int(x)
        for x in page.locator(f"#recommendations [data-{kind}-id]").evaluate_all(
            f"els => els.map(e => e.dataset.{kind}Id)"
        )
    ]


def test_open_a_look_see_six_items_and_filter_by_style(page, shop, screenshot):
    page.goto("/")
    assert page.locator(".tab.is-active").inner_text() == "Snapshot → items"
    screenshot("01-snapshot-tab")
    page.locator("[data-snapshot-id] a").first.click()

    page.wait_for_selector("#recommendations [data-item-id]")
    before = result_ids(page, "item")
    assert len(before) == 6
    assert page.locator("#curated [data-item-id]").count() == 2
    images_loaded = page.locator(".detail-photo img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert images_loaded
    screenshot("02-snapshot-page")

    page.locator("#recommendations").locator("xpath=..").locator("select[name=style]").select_option("boho")
    page.wait_for_function(
        "before => { const ids = [...document.querySelectorAll('#recommendations [data-item-id]')]"
        ".map(e => e.dataset.itemId).join(); return ids && ids !== before; }",
        arg=",".join(map(str, before)),
    )
    after = result_ids(page, "item")
    assert len(after) == 6
    assert after != before
    assert set(after) <= shop["boho_ids"]
    assert "style=boho" in page.url  # the filtered view can be shared and reloaded
    screenshot("03-snapshot-page-boho")


def test_item_page_shows_six_looks_that_link_onward(page, shop, screenshot):
    page.goto("/items/")
    assert page.locator(".tab.is-active").inner_text() == "Item → snapshots"
    assert page.locator("[data-item-id]").count() == 24
    with page.expect_navigation():
        page.locator("form.filters select[name=style]").select_option("boho")
    assert page.url.endswith("/items/?style=boho")
    assert {int(x) for x in page.locator("[data-item-id]").evaluate_all("els => els.map(e => e.dataset.itemId)")} == (
        shop["boho_ids"]
    )
    screenshot("04-item-tab-boho")
    page.locator("[data-item-id] a").first.click()

    page.wait_for_selector("#recommendations [data-snapshot-id]")
    assert len(result_ids(page, "snapshot")) == 6
    screenshot("05-item-page")
    page.locator("#recommendations [data-snapshot-id] a").first.click()
    page.wait_for_selector("#recommendations [data-item-id]")
    assert "/snapshots/" in page.url


def test_upload_a_photo_on_each_tab(page, shop, query_worker, datasets_dir, screenshot):
    street_photo = datasets_dir / "ccp" / "photos" / "0100.jpg"
    page.goto("/")
    page.set_input_files("form.upload input[type=file]", str(street_photo))
    page.locator("form.upload button[type=submit]").click()
    page.wait_for_selector("#recommendations [data-item-id]")
    assert len(result_ids(page, "item")) == 6
    screenshot("06-upload-snapshot-results")

    product_photo = next((datasets_dir / "clothing-dataset" / "images").glob("*.jpg"))
    page.goto("/items/")
    page.set_input_files("form.upload input[type=file]", str(product_photo))
    page.locator("form.upload button[type=submit]").click()
    page.wait_for_selector("#recommendations [data-snapshot-id]")
    assert len(result_ids(page, "snapshot")) == 6
    screenshot("07-upload-item-results")
