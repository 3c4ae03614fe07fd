"""Catalog selectors: values and query counts."""

from __future__ import annotations

import pytest

from catalog.models import Item, Snapshot
from catalog.selectors import ccp_post_snapshots, embedding_status_counts, snapshot_get_post, source_keys_existing
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_embedding_status_counts():
    f.make_item(embedding_status="ready")
    f.make_item(embedding_status="failed")
    f.make_item()
    f.make_snapshot(embedding_status="ready")
    assert embedding_status_counts() == {
        "items": {"pending": 1, "ready": 1, "failed": 1},
        "snapshots": {"pending": 0, "ready": 1, "failed": 0},
    }


def test_snapshot_get_post_prefetches_everything(django_assert_num_queries):
    items = [f.make_item(category=f.make_category()) for _ in range(3)]
    snapshot = f.make_snapshot(items=items, styles=[f.make_style()], tags=[f.make_tag()], brands=[f.make_brand()])
    with django_assert_num_queries(5):  # snapshot, styles, tags, brands, post items + item + category
        post = snapshot_get_post(pk=snapshot.pk)
        names = [pi.item.category.name for pi in post.post_items.all()]
        assert len(post.styles.all()) == len(post.tags.all()) == len(post.brands.all()) == 1
    assert names == [i.category.name for i in items]


def test_ccp_split_and_source_keys():
    for n in (1, 600, 601, 800, 1005):
        key = f"ccp:post:{n:04d}" if n < 1000 else f"ccp:photo:{n:04d}"
        f.make_snapshot(source_key=key)
    f.make_item(source_key="clothing:abc")
    assert sorted(ccp_post_snapshots(split="train").values_list("source_key", flat=True)) == [
        "ccp:post:0001",
        "ccp:post:0600",
    ]
    assert sorted(ccp_post_snapshots(split="val").values_list("source_key", flat=True)) == [
        "ccp:post:0601",
        "ccp:post:0800",
    ]
    assert source_keys_existing(model=Item, prefix="clothing:") == {"clothing:abc"}
    assert len(source_keys_existing(model=Snapshot, prefix="ccp:")) == 5
    with pytest.raises(ValueError, match="unknown CCP split"):
        ccp_post_snapshots(split="dev")


def test_broker_outage_leaves_rows_pending_without_failing(monkeypatch, caplog, django_capture_on_commit_callbacks):
    from workers.celery import app

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", down)
    with django_capture_on_commit_callbacks(execute=True):
        item = f.make_item(enqueue=True)
    item.refresh_from_db()
    assert item.embedding_status == "pending"
    assert "Could not queue workers.embed_items for 1 ids" in caplog.text
