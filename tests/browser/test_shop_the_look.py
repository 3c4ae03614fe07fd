"""Shop the look in a real (headless) browser: a look's garments chosen by mouse and by keyboard, an
uploaded street photo's detected garments tapped, and a box drawn over it, under the site's CSP."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tests.browser.test_csp import Watched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# region -> (group, box) of the stored look: a top over trousers (regions 1 and 2 of its 3 rows)
LOOK_GARMENTS = {1: ("tops", (0.22, 0.14, 0.78, 0.5)), 2: ("trousers", (0.28, 0.5, 0.72, 0.93))}


@pytest.fixture
def look_shop(datasets_dir, transactional_db):
    """Real pictures: 8 tops (t-shirt) and 8 trousers (pants), one street look with two stored garments,
    an active 8-d version with 3 rows per look (the fake query worker answers two garments for it)."""
    from catalog.services.taxonomy import category_get_or_create
    from catalog.validators import validate_image_upload
    from tests import factories as f
    from tests.recommender.conftest import Catalog, store_garments

    rng = np.random.default_rng(11)
    catalog = Catalog()
    version = catalog.version(dim=8, max_regions=3)
    kinds = {"tops": category_get_or_create(path="t-shirt"), "trousers": category_get_or_create(path="pants")}
    with open(datasets_dir / "clothing-dataset" / "images.csv") as handle:
        rows = [r for r in csv.DictReader(handle)][:16]
    items = {"tops": [], "trousers": []}
    for n, row in enumerate(rows):
        group = ("tops", "trousers")[n % 2]
        path = datasets_dir / "clothing-dataset" / "images" / f"{row['image']}.jpg"
        items[group].append(
            f.make_item(f"{group.title()} {n}", image=validate_image_upload(path), category=kinds[group], price="29.90")
        )
    catalog.item_vectors(version, [(item, rng.normal(size=8)) for group in items.values() for item in group])
    look = f.make_snapshot(
        "Look with two pieces", image=validate_image_upload(datasets_dir / "ccp" / "photos" / "0001.jpg")
    )
    catalog.snapshot_vectors(version, look, rng.normal(size=(3, 8)).tolist())
    store_garments(version, look, LOOK_GARMENTS)
    return {"look": look, "tops": {i.pk for i in items["tops"]}, "trousers": {i.pk for i in items["trousers"]}}


@pytest.fixture
def watched(page, live_server) -> Watched:
    return Watched(page, live_server.url)


def result_ids(page) -> list[int]:
    return [
        int(x)
        for x in page.locator("#recommendations [data-item-id]").evaluate_all("els => els.map(e => e.dataset.itemId)")
    ]


def label_sits_at_its_box(page, figure: str, number: int, box) -> None:
    """The garment's label is drawn over the photo at its box's top-left corner (placed by lookbook.js)."""
    frame = page.locator(f"{figure} .look-frame").bounding_box()
    label = page.locator(f'{figure} .garment-link[data-garment="{number}"]').bounding_box()
    left, top = frame["x"] + box[0] * frame["width"], frame["y"] + box[1] * frame["height"]
    assert left <= label["x"] <= left + 12 and top <= label["y"] <= top + 12, (label, left, top)


def test_a_looks_garment_is_chosen_by_click_on_its_label_or_outline_and_by_keyboard(watched, look_shop, screenshot):
    page = watched.page
    look = look_shop["look"]
    page.goto(f"/snapshots/{look.pk}/")

    assert page.locator(".garment-shape").count() == 2
    label_sits_at_its_box(page, ".look-figure", 2, LOOK_GARMENTS[2][1])
    cards = page.locator('#recommendations [data-results="picks"] .card--pick')
    assert cards.count() == 2
    assert cards.locator(".card-piece").all_inner_texts() == ["Matches: Top", "Matches: Trousers"]
    cards.nth(1).hover()  # a pick card lights up its garment on the photo
    assert "is-hot" in page.locator('.garment-shape[data-garment="2"]').get_attribute("class")
    screenshot("20-look-garments")

    page.get_by_role("link", name="Trousers — show items for this piece").click()
    page.wait_for_url("**garment=2")
    assert page.locator("#recommendations h3").inner_text() == "More like this piece: Trousers"
    found = result_ids(page)
    assert len(found) == 6 and set(found) <= look_shop["trousers"]
    assert "is-chosen" in page.locator('.garment-shape[data-garment="2"]').get_attribute("class")
    screenshot("21-look-trousers")

    page.get_by_role("link", name="Back to the whole look").click()
    page.wait_for_selector('#recommendations [data-results="picks"]')
    page.wait_for_load_state("load")  # lookbook.js's click handler is attached once the page has loaded
    # the outline itself is clickable too (lookbook.js passes the click to its label)
    top = page.locator('.look-shapes .garment-shape[data-garment="1"] .shape-line').bounding_box()
    page.mouse.click(top["x"] + top["width"] / 2, top["y"] + top["height"] / 2)
    page.wait_for_url("**garment=1")
    assert set(result_ids(page)) <= look_shop["tops"]

    page.goto(f"/snapshots/{look.pk}/")
    for _ in range(30):  # Tab through the page to the top's label, then Enter
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Top — show items for this piece":
            break
    else:
        pytest.fail("the garment's label cannot be reached with Tab")
    focused = page.locator(".garment-link:focus-visible")
    assert focused.count() == 1 and focused.evaluate("el => getComputedStyle(el).outlineStyle") == "solid"
    assert "is-hot" in page.locator('.garment-shape[data-garment="1"]').get_attribute("class")
    screenshot("22-look-keyboard-focus")
    page.keyboard.press("Enter")
    page.wait_for_url("**garment=1")
    assert page.locator("#recommendations h3").inner_text() == "More like this piece: Top"
    found = result_ids(page)
    assert len(found) == 6 and set(found) <= look_shop["tops"]
    watched.assert_clean()


def test_an_uploaded_photos_garment_is_tapped_and_a_drawn_box_is_searched(
    watched, look_shop, query_worker, datasets_dir, screenshot
):
    page = watched.page
    page.goto("/")
    page.set_input_files("form.upload input[type=file]", str(datasets_dir / "ccp" / "photos" / "0100.jpg"))
    page.locator("form.upload button[type=submit]").click()

    page.wait_for_selector('#query-results [data-results="picks"]')
    assert page.locator(".look-picks .card-piece").all_inner_texts() == ["Matches: Top", "Matches: Trousers"]
    assert len(result_ids(page)) == 6  # the whole photo's list below the picks
    assert page.locator(".query-preview .garment-shape").count() == 2
    label_sits_at_its_box(page, ".query-preview", 2, (0.3, 0.5, 0.7, 0.92))
    screenshot("23-upload-garments")

    with page.expect_response("**/search/") as posted:
        page.get_by_role("button", name="Trousers — show items for this piece").click()
    assert posted.value.status == 200
    page.wait_for_selector('#query-results[data-answer="piece"]')
    assert page.locator("#query-results h2").inner_text() == "More like this piece: Trousers"
    found = result_ids(page)
    assert len(found) == 6 and set(found) <= look_shop["trousers"]
    assert page.locator(".query-preview .garment-shape").count() == 2  # the photo and its garments stay
    screenshot("24-upload-trousers")

    page.get_by_role("button", name="Back to the whole photo").click()
    page.wait_for_selector('#query-results[data-answer="whole"] [data-results="picks"]')

    page.locator(".box-draw summary").click()
    frame = page.locator(".query-preview .look-frame").bounding_box()
    page.mouse.move(frame["x"] + frame["width"] * 0.2, frame["y"] + frame["height"] * 0.55)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.5, frame["y"] + frame["height"] * 0.7, steps=4)
    with page.expect_response("**/search/") as posted:
        page.mouse.move(frame["x"] + frame["width"] * 0.8, frame["y"] + frame["height"] * 0.95, steps=4)
        page.mouse.up()
    assert posted.value.status == 200
    page.wait_for_selector('#query-results[data-answer="piece"]')
    assert page.locator("#query-results h2").inner_text() == "More like this piece: your box"
    assert len(result_ids(page)) == 6
    assert [float(page.input_value(f"[name=box_{side}]")) for side in ("left", "top", "right", "bottom")] == (
        pytest.approx([20, 55, 80, 95], abs=1)
    )
    assert "is-shown" in page.locator(".drawn-box").get_attribute("class")
    screenshot("25-upload-drawn-box")

    # the keyboard's way: type the box in percent and search it
    page.fill("[name=box_left]", "10")
    page.fill("[name=box_top]", "10")
    page.fill("[name=box_right]", "0")
    with page.expect_response("**/search/") as posted:
        page.fill("[name=box_right]", "60")
        page.get_by_role("button", name="Search this box").click()
    assert posted.value.status == 200
    page.wait_for_selector("#query-results #recommendations [data-item-id]")
    watched.assert_clean()
