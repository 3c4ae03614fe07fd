"""Queueing descriptor computation for the workers, by task name (the web process never imports TensorFlow).

Tasks (implemented in ``workers``, named in ``workers.registry``): ``EMBED_ITEMS(item_ids)`` and
``EMBED_SNAPSHOTS(snapshot_ids)`` on ``settings.CATALOG_EMBEDDING_QUEUE``.
Messages are sent after the surrounding transaction commits, in chunks of
``settings.CATALOG_EMBED_BATCH_SIZE`` ids. If the broker is down, the rows stay
``pending`` (the error is logged) and the workers' periodic sweep picks them up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from catalog.models import EmbeddingStatus, Item, Snapshot
from workers.registry import EMBED_ITEMS, EMBED_SNAPSHOTS

logger = logging.getLogger(__name__)


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# A short, bounded publish retry: a web request or an import must not hang on a broker outage.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def _send(task_name: str, ids: list[int]) -> None:
    from workers.celery import app

    for chunk in _chunks(ids, settings.CATALOG_EMBED_BATCH_SIZE):
        try:
            # ignore_result: nobody waits on these results, so no result-backend subscription either.
            app.send_task(
                task_name,
                args=[chunk],
                queue=settings.CATALOG_EMBEDDING_QUEUE,
                ignore_result=True,
                retry=True,
                retry_policy=_RETRY_POLICY,
            )
        except Exception:  # noqa: BLE001 - the rows stay pending; the workers' sweep queues them later
            logger.exception(
                "Could not queue %s for %d ids (broker unreachable?); they stay pending for the sweep",
                task_name,
                len(ids),
            )
            return


def embeddings_enqueue(*, item_ids: Iterable[int] = (), snapshot_ids: Iterable[int] = ()) -> None:
    """Send embedding tasks for these rows once the current transaction commits (at once outside one)."""
    items = sorted(set(item_ids))
    snapshots = sorted(set(snapshot_ids))
    if items:
        transaction.on_commit(lambda: _send(EMBED_ITEMS.name, items), robust=True)
    if snapshots:
        transaction.on_commit(lambda: _send(EMBED_SNAPSHOTS.name, snapshots), robust=True)


@transaction.atomic
def embeddings_requeue(
    *, items: QuerySet[Item] | None = None, snapshots: QuerySet[Snapshot] | None = None
) -> tuple[int, int]:
    """Mark rows pending (clearing the last error) and queue them again; returns (items, snapshots) queued."""
    item_ids = list(items.values_list("pk", flat=True)) if items is not None else []
    snapshot_ids = list(snapshots.values_list("pk", flat=True)) if snapshots is not None else []
    reset = {"embedding_status": EmbeddingStatus.PENDING, "embedding_error": ""}
    if item_ids:
        Item.objects.filter(pk__in=item_ids).update(**reset)
    if snapshot_ids:
        Snapshot.objects.filter(pk__in=snapshot_ids).update(**reset)
    embeddings_enqueue(item_ids=item_ids, snapshot_ids=snapshot_ids)
    return len(item_ids), len(snapshot_ids)
