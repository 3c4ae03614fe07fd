"""Shop the look on the pages: a look's garments drawn with their controls, one pick card per garment,
"more like this piece", bad piece numbers as 4xx pages, the item page's matched garment, an upload's pieces."""

from __future__ import annotations

import re

import pytest

from catalog.services.taxonomy import category_get_or_create
from recommender.selectors import Filters, snapshot_list_for_item
from recommender.selectors.similarity.pieces import item_list_for_garment, look_picks, matched_garments
from tests import factories as f
from tests.recommender.conftest import three_garment_look

pytestmark = pytest.mark.django_db


def ids_in(html: str, kind: str) -> list[int]:
    return [int(x) for x in re.findall(rf'data-{kind}-id="(\d+)"', html)]


def recommendations(html: str) -> str:
    return html.split('id="recommendations"', 1)[1]


@pytest.fixture
def look(catalog_rows, rng):
    """The three-garment look of the conftest (12 items each of tops, trousers and shoes, 4 of each by
    Acme) and a bare look without any garment."""
    look = three_garment_look(catalog_rows, rng)
    bare = catalog_rows.snapshots(1)[0]
    catalog_rows.snapshot_vectors(look["version"], bare, rng.normal(size=(4, 8)).tolist())
    return {**look, "bare": bare}


def test_a_looks_garments_are_drawn_with_named_controls_and_one_pick_card_each(client, look):
    snapshot = look["snapshot"]

    response = client.get(f"/snapshots/{snapshot.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'viewBox="0 0 1000 1000" preserveAspectRatio="none"' in html
    shapes = re.findall(
        r'<g class="garment-shape" data-garment="(\d)">\s*<polygon class="shape-halo" points="([^"]+)"', html
    )
    assert shapes[0] == ("1", "200.0,100.0 800.0,100.0 800.0,450.0 200.0,450.0")  # the top, in per mille
    assert [n for n, _ in shapes] == ["1", "2", "3"]
    links = re.findall(r'<a class="garment-link" href="\?garment=(\d)" data-garment="\d" aria-label="([^"]+)"', html)
    assert links == [
        ("1", "Top — show items for this piece"),
        ("2", "Trousers — show items for this piece"),
        ("3", "Shoes — show items for this piece"),
    ]
    assert 'data-left="25.00" data-top="45.00"' in html  # where the trousers' label goes
    _, picks = look_picks(snapshot_id=snapshot.pk)
    block = recommendations(html)
    assert "Shop the look" in block
    cards = re.findall(r'data-item-id="(\d+)" data-garment="(\d)">.*?Matches: ([^<]+)<', block, re.S)
    assert cards == [(str(p.match.item.pk), str(p.garment.number), p.garment.name) for p in picks]
    assert [name for _, _, name in cards] == ["Top", "Trousers", "Shoes"]


def test_choosing_a_garment_shows_more_like_that_piece_with_the_filters_kept(client, look):
    snapshot = look["snapshot"]

    page = client.get(f"/snapshots/{snapshot.pk}/", {"garment": 2})
    fragment = client.get(f"/snapshots/{snapshot.pk}/recommendations/", {"garment": "2", "brand": "acme"})

    html = page.content.decode()
    assert page.status_code == 200
    _, expected = item_list_for_garment(snapshot_id=snapshot.pk, garment_number=2)
    block = recommendations(html)
    assert "More like this piece: Trousers" in block and "Back to the whole look" in block
    assert ids_in(block, "item") == [m.item.pk for m in expected] and len(expected) == 6
    assert set(ids_in(block, "item")) <= {i.pk for i in look["items"]["trousers"]}
    assert 'aria-current="true">Trousers</a>' in html
    assert '<g class="garment-shape is-chosen" data-garment="2">' in html
    assert '<input type="hidden" name="garment" value="2">' in html  # a filter change keeps the piece
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body and "More like this piece: Trousers" in body
    _, acme = item_list_for_garment(
        snapshot_id=snapshot.pk, garment_number=2, filters=Filters(brand_ids=(look["acme"].pk,))
    )
    assert ids_in(body, "item") == [m.item.pk for m in acme] and len(acme) == 4


@pytest.mark.parametrize(
    ("value", "status"),
    [("99", 404), ("4", 404), ("abc", 400), ("-1", 400), ("0", 400), ("1.5", 400), ("9" * 40, 400), ("²", 400)],
)
def test_a_garment_the_look_does_not_have_is_a_clear_4xx_page(client, look, value, status):
    snapshot = look["snapshot"]

    page = client.get(f"/snapshots/{snapshot.pk}/", {"garment": value})
    fragment = client.get(f"/snapshots/{snapshot.pk}/recommendations/", {"garment": value})

    assert page.status_code == status and fragment.status_code == status
    html = page.content.decode()
    assert 'role="alert" data-state="bad-garment"' in html
    assert ("This look has no piece number" if status == 404 else "chosen by its number") in html
    assert "Shop the look" in html  # and the whole look below the message
    other = client.get(f"/snapshots/{look['bare'].pk}/", {"garment": "1"})
    assert other.status_code == 404  # another look's piece numbers mean nothing here


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
def test_a_nul_byte_in_the_garment_is_a_400_page(client, look, settings, debug):
    settings.DEBUG = debug
    response = client.get(f"/snapshots/{look['snapshot'].pk}/", {"garment": "1\x00"})
    assert response.status_code == 400 and response["Content-Type"].startswith("text/html")


def test_a_look_without_garments_shows_the_whole_photos_list(client, look):
    html = client.get(f"/snapshots/{look['bare'].pk}/").content.decode()

    assert "garment-shape" not in html and "garment-link" not in html and "Shop the look" not in html
    assert len(ids_in(recommendations(html), "item")) == 6


def test_the_item_page_marks_the_garment_each_look_matched_by(client, look):
    item = look["items"]["trousers"][0]

    html = client.get(f"/items/{item.pk}/").content.decode()

    matches = snapshot_list_for_item(item_id=item.pk)
    matched = matched_garments(item_id=item.pk, matches=matches)
    garment = matched[look["snapshot"].pk]
    card = html.split(f'data-snapshot-id="{look["snapshot"].pk}"', 1)[1].split("</li>", 1)[0]
    assert card.startswith(f' data-matched-garment="{garment.number}"')
    assert f"Matched: {garment.name}" in card
    box = garment.percent_box  # the card's frame is 2:3, as the 300 x 450 look is: no crop to correct
    rect = re.search(r'<rect class="shape-line" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"', card)
    assert rect, card
    assert [float(v) for v in rect.groups()] == pytest.approx([box["left"], box["top"], box["width"], box["height"]])
    bare = html.split(f'data-snapshot-id="{look["bare"].pk}"', 1)[1].split("</li>", 1)[0]
    assert "Matched:" not in bare and "card-mark" not in bare


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"box": "a,b,c,d"}, "A box is four numbers"),
        ({"box": "0.1,0.2,0.3"}, "A box is four numbers"),
        ({"box": "0.5,0.5,0.5,0.5"}, "left &lt; right"),
        ({"box": "0.1,0.1,1.5,0.9"}, "inside the photo"),
        ({"box": "nan,0,1,1"}, "A box is four numbers"),
        ({"box": "0.1,0.1,0.105,0.9"}, "too small"),
        ({"box_left": "10", "box_top": "10", "box_right": "5", "box_bottom": "50"}, "left &lt; right"),
        ({"box": "0.1,0.1,0.9,0.9", "group": "Not a slug"}, "Unknown kind of piece"),
        ({"box": "0.1,0.1,0.9,0.9", "group": "spaceships"}, "Unknown kind of piece"),
    ],
)
def test_a_bad_box_or_group_on_the_upload_page_is_a_400_with_the_reason(client, look, fields, message):
    response = client.post("/search/", {"direction": "snapshot_to_items", "image": f.make_upload(), **fields})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'role="alert"' in response.content.decode()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_street_photo_shows_its_pieces_their_picks_and_a_search_per_piece(client, look, query_worker):
    from tests.recommender.fake_embed_worker import known_garments, known_vectors

    response = client.post("/search/", {"direction": "snapshot_to_items", "image": f.make_upload()})
    piece = client.post(
        "/search/",
        {"direction": "snapshot_to_items", "image": f.make_upload(), "box": "0.25,0.12,0.75,0.5", "group": "tops"},
    )
    drawn = client.post(
        "/search/",
        {
            "direction": "snapshot_to_items",
            "image": f.make_upload(),
            **{"box_left": "10", "box_top": "20", "box_right": "60", "box_bottom": "90"},
        },
    )

    html = response.content.decode()
    assert response.status_code == 200, html
    vectors = known_vectors("snapshot", 8, 4)
    garments, picks = look_picks(vectors=vectors, garments=known_garments("snapshot", len(vectors)))
    assert [g.name for g in garments] == ["Top", "Trousers"]
    assert re.findall(r'name="box" value="([^"]+)">\s*<input type="hidden" name="group" value="(\w+)"', html) == [
        ("0.2500,0.1200,0.7500,0.5000", "tops"),
        ("0.3000,0.5000,0.7000,0.9200", "trousers"),
    ]
    assert 'aria-label="Top — show items for this piece"' in html
    assert "Shop the look" in html and "More like the whole photo" in html
    picks_html = html.split('data-results="picks"', 1)[1].split("</ul>", 1)[0]
    assert ids_in(picks_html, "item") == [p.match.item.pk for p in picks] and "Matches: Trousers" in picks_html
    assert len(ids_in(recommendations(html), "item")) == 6
    assert "Draw a box around a piece" in html and 'name="box_left"' in html

    body = piece.content.decode()
    assert piece.status_code == 200, body
    assert "More like this piece: Top" in body and 'data-answer="piece"' in body
    found = ids_in(recommendations(body), "item")
    assert len(found) == 6 and set(found) <= {i.pk for i in look["items"]["tops"]}
    assert '<rect class="searched-box" x="250.0" y="120.0" width="500.0" height="380.0"' in body
    body = drawn.content.decode()
    assert drawn.status_code == 200, body
    assert "More like this piece: your box" in body and len(ids_in(recommendations(body), "item")) == 6
    assert 'name="box_right" min="0" max="100" step="any" required value="60.0"' in body


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((300, 450), {"x": 20.0, "y": 10.0, "width": 60.0, "height": 40.0}),  # 2:3 like the card: as is
        ((600, 450), {"x": 0.0, "y": 10.0, "width": 100.0, "height": 40.0}),  # 4:3: a centred half is shown
        ((300, 900), {"x": 20.0, "y": 0.0, "width": 60.0, "height": 50.0}),  # 1:3: the middle half is shown
    ],
)
def test_a_cards_box_follows_the_frames_crop_of_the_photo(size, expected):
    from types import SimpleNamespace

    from recommender.selectors.similarity.pieces import Garment
    from recommender.templatetags.lookbook import card_box

    garment = Garment(number=1, region=1, group="tops", box=(0.2, 0.1, 0.8, 0.5), outline=[], confidence=1.0)
    width, height = size
    assert card_box(garment, SimpleNamespace(width=width, height=height)) == pytest.approx(expected)


def test_when_the_filters_leave_no_garments_kind_the_page_answers_with_the_whole_photo(client, look, catalog_rows):
    skirt = catalog_rows.items(1, category=category_get_or_create(path="skirt"))[0]
    catalog_rows.item_vectors(look["version"], [(skirt, [1.0] * 8)])
    html = client.get(f"/snapshots/{look['snapshot'].pk}/", {"category": "skirts"}).content.decode()
    # the look has no skirt: no pick passes the filter, so the whole photo's filtered list shows instead
    assert "Shop the look" not in recommendations(html)
    assert ids_in(recommendations(html), "item") == [skirt.pk]
