"""Queueing descriptor computation for the workers, by task name (the web process never imports TensorFlow).

Tasks (implemented in ``workers``, named in ``workers.registry``): ``EMBED_ITEMS(item_ids)`` and
``EMBED_SNAPSHOTS(snapshot_ids)`` on ``settings.CATALOG_EMBEDDING_QUEUE``.
Messages are sent after the surrounding transaction commits, in chunks of
``settings.CATALOG_EMBED_BATCH_SIZE`` ids. If the broker is down, the rows stay
``pending`` (the error is logged) and the workers' periodic sweep picks them up.

Each message carries a priority (``workers.registry.EMBED_PRIORITIES``): posts saved in the admin or
the API are ``interactive`` and go ahead of the ``bulk`` messages of an import on the same queue. A sent
message marks its images ``embedding_queued_at`` (a worker marks them again when it starts on them),
so the sweep re-queues only images with no message out, or whose message is older than
``WORKERS_REQUEUE_AFTER_S`` and so presumed lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from catalog.embedding_targets import target
from catalog.models import EmbeddingStatus, Item, Snapshot
from workers.registry import EMBED_ITEMS, EMBED_PRIORITIES, EMBED_SNAPSHOTS

Priority = Literal["interactive", "bulk"]
_TASKS = {"item": EMBED_ITEMS.name, "snapshot": EMBED_SNAPSHOTS.name}

logger = logging.getLogger(__name__)


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


# A short, bounded publish retry: a web request or an import must not hang on a broker outage.
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def _send(kind: str, ids: list[int], priority: Priority) -> None:
    from workers.celery import app

    for chunk in _chunks(ids, settings.CATALOG_EMBED_BATCH_SIZE):
        # Marked before the send, so a worker's own mark (taken as it starts) is never the older one.
        marked_at = timezone.now()
        images_mark_queued(kind=kind, ids=chunk, at=marked_at)
        try:
            # ignore_result: nobody waits on these results, so no result-backend subscription either.
            app.send_task(
                _TASKS[kind],
                args=[chunk],
                queue=settings.CATALOG_EMBEDDING_QUEUE,
                priority=EMBED_PRIORITIES[priority],
                ignore_result=True,
                retry=True,
                retry_policy=_RETRY_POLICY,
            )
        except Exception:  # noqa: BLE001 - the rows stay pending; the workers' sweep queues them later
            logger.exception(
                "Could not queue %s for %d ids (broker unreachable?); they stay pending for the sweep",
                _TASKS[kind],
                len(ids),
            )
            images_mark_unqueued(kind=kind, ids=chunk, marked_before=marked_at)
            return


def embeddings_enqueue(
    *, item_ids: Iterable[int] = (), snapshot_ids: Iterable[int] = (), priority: Priority = "interactive"
) -> None:
    """Send embedding tasks for these rows once the current transaction commits (at once outside one).

    ``priority``: "interactive" (a post saved by staff or through the API, the default) or "bulk" (an
    import, the sweep), which waits behind every interactive message of the queue.
    """
    if priority not in EMBED_PRIORITIES:
        raise ValueError(f"priority must be one of {sorted(EMBED_PRIORITIES)}, not {priority!r}")
    for kind, ids in (("item", item_ids), ("snapshot", snapshot_ids)):
        ids = sorted(set(ids))
        if ids:
            transaction.on_commit(lambda kind=kind, ids=ids: _send(kind, ids, priority), robust=True)


def images_mark_queued(*, kind: str, ids: Iterable[int], at: datetime | None = None) -> int:
    """A message to embed these images is out (or a worker has just started on it): the sweep leaves them be."""
    return target(kind).owner.objects.filter(pk__in=list(ids)).update(embedding_queued_at=at or timezone.now())


def images_mark_unqueued(*, kind: str, ids: Iterable[int], marked_before: datetime) -> int:
    """No message went out for these images after all: clear the mark of those still pending that no newer
    message has marked since, so the sweep takes them up after its grace period."""
    return (
        target(kind)
        .owner.objects.filter(
            pk__in=list(ids), embedding_status=EmbeddingStatus.PENDING, embedding_queued_at__lte=marked_before
        )
        .update(embedding_queued_at=None)
    )


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
