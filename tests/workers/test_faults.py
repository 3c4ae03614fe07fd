"""Faults with real processes: a killed worker, a restarted Redis, an unavailable PostgreSQL, a bad artifact."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from django.db import connection

from catalog.models import Snapshot, SnapshotEmbedding
from recommender.models import ModelVersion
from tests.workers.conftest import WORKER_ENV, expected_vectors, vectors_of, wait_for

# The restarted worker takes back unacknowledged messages older than 2 s, scanning every second.
RESTORE_FAST = {
    "CELERY_VISIBILITY_TIMEOUT": "2",
    "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    "CELERY_UNACKED_RESTORE_THROTTLE": "1",
}
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _embedded(version) -> int:
    return SnapshotEmbedding.objects.filter(model_version=version).values("snapshot_id").distinct().count()


def test_a_worker_killed_mid_batch_loses_nothing_and_writes_each_image_once(
    worker_factory, broker_clean, make_version, make_colour_post
):
    from workers.tasks import embed_snapshots

    version = make_version(activate=True)
    posts = [make_colour_post(i, n_items=0) for i in range(10)]
    ids = [p.pk for p in posts]
    slow = worker_factory(
        queues="embedding",
        name="doomed",
        extra_env={**WORKER_ENV, "ML_EMBED_BATCH_SIZE": "2", "FAKE_ML_EMBED_DELAY_S": "0.6"},
    )
    embed_snapshots.delay(ids)
    wait_for(lambda: _embedded(version) >= 2, message="the first batch")
    slow.kill()  # SIGKILL, mid-task: the message was not acknowledged (acks_late)
    partial = _embedded(version)
    assert 2 <= partial < 10

    worker_factory(queues="embedding", name="survivor", extra_env={**WORKER_ENV, **RESTORE_FAST})
    wait_for(lambda: _embedded(version) == 10, timeout=120, message="every snapshot embedded after the restart")

    wait_for(lambda: set(Snapshot.objects.filter(pk__in=ids).values_list("embedding_status", flat=True)) == {"ready"})
    rows = vectors_of(version, "snapshot")
    assert sorted(rows) == sorted(ids)
    for post in posts:
        assert len(rows[post.pk]) == 2  # exactly one row per region, no duplicates
        assert np.allclose(rows[post.pk], expected_vectors(version, post.image.path, "snapshot"), atol=1e-6)


def test_the_worker_reconnects_after_redis_restarts(worker_factory, broker_clean, make_version, make_colour_post):
    from config import devservices
    from workers.tasks import embed_snapshots

    version = make_version(activate=True)
    first, second = make_colour_post(0, n_items=0), make_colour_post(1, n_items=0)
    worker = worker_factory(queues="embedding", name="steadfast", extra_env=WORKER_ENV)
    embed_snapshots.delay([first.pk])
    wait_for(lambda: _embedded(version) == 1, message="the first task")

    try:
        assert devservices.stop_redis()
        time.sleep(2)
    finally:
        devservices.start_redis()
        _drop_stale_connections()  # this test process's pooled sockets died with the old server

    embed_snapshots.delay([second.pk])
    wait_for(lambda: _embedded(version) == 2, timeout=90, message="a task sent after the restart")
    assert worker.proc.poll() is None
    log = worker.log_path.read_text(errors="replace")
    assert "Connection to broker lost" in log


def _drop_stale_connections() -> None:
    from kombu import pools

    from workers.celery import app

    pools.reset()  # closes and forgets kombu's global connection/producer pools
    app._pool = None
    app.amqp._producer_pool = None
    app.backend.client.connection_pool.disconnect()


def test_tasks_retry_while_postgresql_refuses_connections_and_complete_after(
    worker_factory, broker_clean, make_version, make_colour_post
):
    from workers.tasks import embed_snapshots

    version = make_version(activate=True)
    post = make_colour_post(0, n_items=0)
    worker = worker_factory(queues="embedding", name="patient", extra_env=WORKER_ENV)
    name = connection.settings_dict["NAME"]
    _allow_connections(name, False)
    try:
        embed_snapshots.delay([post.pk])
        time.sleep(4)
        assert _embedded(version) == 0  # the test's own connection still works; the worker's cannot
    finally:
        _allow_connections(name, True)

    wait_for(lambda: _embedded(version) == 1, timeout=90, message="the task to complete after the outage")
    log = worker.log_path.read_text(errors="replace")
    assert "Retry in" in log and "not currently accepting connections" in log


def _allow_connections(database: str, allow: bool) -> None:
    """Toggle ALLOW_CONNECTIONS from the maintenance database; when refusing, also end the other sessions
    (the worker's), so this is an outage and not just a refusal of new connections."""
    import psycopg

    params = connection.settings_dict
    with psycopg.connect(host=params["HOST"], user=params["USER"], dbname="postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [database, connection.connection.info.backend_pid],
            )


def test_a_corrupt_or_missing_artifact_fails_its_version_and_the_active_one_keeps_serving(
    worker_factory, broker_clean, make_version, make_colour_post
):
    import base64

    from tests.workers.conftest import color_image
    from workers.ml_runtime import ArtifactUnavailable, artifact_dir
    from workers.tasks import activate_version, embed_query, reindex_version

    active = make_version(activate=True)
    post = make_colour_post(0, n_items=1)
    corrupt, missing = make_version(mode="color"), make_version(mode="color")
    (artifact_dir(corrupt) / "weights.bin").write_bytes(b"bit rot")
    shutil.rmtree(artifact_dir(missing))
    worker_factory(queues="embedding,queries", name="careful", extra_env=WORKER_ENV)

    with pytest.raises(ArtifactUnavailable, match="checksum mismatch"):
        activate_version.delay(corrupt.pk).get(timeout=30)
    with pytest.raises(ArtifactUnavailable, match="artifact missing"):
        reindex_version.delay(missing.pk).get(timeout=30)

    for version in (corrupt, missing):
        version.refresh_from_db()
        assert version.status == "failed" and version.error
    assert ModelVersion.objects.active().get() == active
    answer = embed_query.delay(base64.b64encode(color_image((1, 2, 3))).decode(), "item").get(timeout=30)
    assert answer["model_version_id"] == active.pk
    from workers.tasks import embed_items

    embed_items.delay(list(post.items.values_list("pk", flat=True))).get(timeout=30)
    assert len(vectors_of(active, "item")) == 1
    from workers.models import Job

    assert set(Job.objects.values_list("kind", "status")) == {("activate", "failed"), ("reindex", "failed")}
