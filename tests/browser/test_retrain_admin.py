"""The model versions' "Retrain now" button and a training run's progress in a real browser, under the
Content-Security-Policy (the button is styled by static/css/admin.css, no inline style). The screenshots
in docs/images/ come from this test (test-artifacts/admin-retrain-*.png)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.browser.test_csp import Watched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_retrain_now_queues_a_run_and_the_list_follows_it_with_the_time_left(
    page, live_server, admin_user, screenshot, monkeypatch
):
    from recommender.versions import version_activate, version_artifact_set, version_create, version_mark_ready
    from workers.celery import app
    from workers.models import Job

    sent = []

    class Result:
        id = "recorded"

    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw["queue"])) or Result())
    active = version_create(name="shipped-efficientnet_lite2", backbone="efficientnet_lite2")
    version_artifact_set(version=active, artifact_path="shipped", checksum="0" * 64, dim=1024, max_regions=32)
    version_mark_ready(version=active)
    version_activate(version=active, require_complete=False)
    watched = Watched(page, live_server.url)

    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.set_viewport_size({"width": 1600, "height": 720})  # every column of the list, for the screenshots
    page.goto("/admin/recommender/modelversion/")
    page.click("#toggle-nav-sidebar")  # the admin's own sidebar toggle
    button = page.get_by_role("button", name="Retrain now")
    assert button.evaluate("b => getComputedStyle(b).borderRadius") == "15px"  # drawn as an object-tools link
    assert button.evaluate("b => getComputedStyle(b).textTransform") == "uppercase"
    screenshot("admin-retrain-button")

    button.click()
    page.wait_for_url("**/admin/recommender/modelversion/")
    job = Job.objects.get(kind="train")
    assert sent == [("workers.train_version", "training")]
    assert f"Training queued as job #{job.pk}" in page.locator(".messagelist").inner_text()
    assert page.get_by_role("link", name=f"Training job #{job.pk} queued").count() == 1

    # The worker has taken it: its version exists, 412 of 1000 steps done in 9 minutes.
    training = version_create(name="trained-20261203-140000", backbone="efficientnet_lite2")
    Job.objects.filter(pk=job.pk).update(
        status="running",
        model_version=training,
        started_at=timezone.now() - timedelta(minutes=9),
        heartbeat_at=timezone.now(),
        progress_done=412,
        progress_total=1000,
        message="epoch 2/5 loss 3.412",
    )
    page.goto("/admin/recommender/modelversion/")
    tools = page.locator(".object-tools").inner_text().lower()
    assert f"training job #{job.pk} running: 412/1000 (41%), 9 min elapsed, about 13 min left" in tools
    row = page.locator("tr", has_text="trained-20261203-140000")
    assert "Train a model version (running, 41%): 9 min elapsed, about 13 min left" in row.inner_text()
    screenshot("admin-retrain-progress")

    button.click()  # a second run is refused while this one goes
    assert "is already running" in page.locator(".messagelist").inner_text()
    assert Job.objects.filter(kind="train").count() == 1

    row.get_by_role("link", name="Train a model version (running, 41%)").click()
    page.wait_for_url(f"**/admin/workers/job/{job.pk}/change/")
    assert "412/1000 (41%), 9 min elapsed, about 13 min left" in page.locator("#content").inner_text()
    screenshot("admin-retrain-job")
    page.get_by_role("link", name="trained-20261203-140000 (Training)").click()
    page.wait_for_url(f"**/admin/recommender/modelversion/{training.pk}/change/")
    watched.assert_clean()
