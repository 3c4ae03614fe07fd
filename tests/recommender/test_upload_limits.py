"""The web process's bounds on shopper uploads: a pixel budget for decodes at once (503 when it stays full),
and a shopper pixel limit of its own."""

from __future__ import annotations

import threading
import time

import pytest

from catalog.validators import validate_image_upload
from recommender import uploads
from recommender.uploads import PixelBudget
from tests import factories as f


def test_decodes_share_the_budget_and_one_that_does_not_fit_waits_then_gives_up():
    budget = PixelBudget(100)
    assert budget.acquire(60, timeout=0) and budget.acquire(40, timeout=0)

    started = time.monotonic()
    assert not budget.acquire(1, timeout=0.2)
    assert time.monotonic() - started >= 0.2
    budget.release(40)
    assert budget.acquire(30, timeout=0) and budget.used == 90


def test_a_waiting_decode_starts_when_another_ends():
    budget = PixelBudget(100)
    budget.acquire(80, timeout=0)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(50, timeout=5)))
    waiter.start()
    time.sleep(0.1)
    assert got == []  # still waiting
    budget.release(80)
    waiter.join(5)
    assert got == [True] and budget.used == 50


def test_a_picture_larger_than_the_whole_budget_is_decoded_alone():
    budget = PixelBudget(100)
    assert budget.acquire(10, timeout=0)
    assert not budget.acquire(500, timeout=0.05)  # waits for the whole budget
    budget.release(10)
    assert budget.acquire(500, timeout=0) and budget.used == 100
    assert not budget.acquire(1, timeout=0)
    budget.release(500)
    assert budget.used == 0


@pytest.mark.django_db
def test_an_upload_is_a_quick_503_while_the_decode_budget_stays_full(client, settings, monkeypatch):
    settings.RECOMMENDER_UPLOAD_DECODE_PIXELS = 1_000_000
    settings.RECOMMENDER_UPLOAD_DECODE_WAIT_S = 0.2
    full = PixelBudget(1_000_000)
    full.acquire(1_000_000, timeout=0)  # other uploads are decoding
    monkeypatch.setattr(uploads, "_decode_budget", full)

    started = time.monotonic()
    api = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload(size=(400, 300))})
    page = client.post("/search/", {"direction": "snapshot_to_items", "image": f.make_upload(size=(400, 300))})

    assert time.monotonic() - started < 5
    assert api.status_code == 503 and api["Retry-After"].isdigit()
    assert "Many photos are being analysed" in api.json()["message"]
    assert page.status_code == 503 and page["Retry-After"].isdigit()
    assert "Many photos are being analysed" in page.content.decode()
    assert full.used == 1_000_000  # nothing was taken or given back by the refused uploads


@pytest.mark.django_db
def test_shopper_uploads_have_their_own_pixel_limit(client, settings):
    settings.RECOMMENDER_UPLOAD_MAX_PIXELS = 100_000
    photo = f.make_image_bytes(size=(400, 300))  # 120,000 pixels

    response = client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload(size=(400, 300))})

    assert response.status_code == 400
    assert "0.1 megapixels" in response.json()["message"]
    assert validate_image_upload(photo, name="staff.jpg").width == 400  # the catalog's limit is unchanged
