"""Upload queries, web side: validate the photo, have a worker describe it, rank with the selectors.

The web process never imports TensorFlow: the cleaned picture goes base64-encoded to the
``workers.embed_query`` task on the low-latency "queries" queue (sent by name), and the
view waits at most ``RECOMMENDER_QUERY_TIMEOUT_S`` for the vectors. Nothing is stored: the
query picture never enters the catalog.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
from celery.exceptions import TaskRevokedError
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings

from catalog.validators import CleanImage, validate_image_upload
from recommender.selectors import (
    Filters,
    ItemMatch,
    NoActiveModel,
    RecommendationUnavailable,
    SnapshotMatch,
    item_list_for_snapshot,
    model_version_active,
    snapshot_list_for_item,
)
from recommender.wire import vectors_decode

logger = logging.getLogger(__name__)

Direction = Literal["snapshot_to_items", "item_to_snapshots"]
DIRECTIONS: tuple[str, ...] = ("snapshot_to_items", "item_to_snapshots")
# The uploaded photo's kind for each direction: a street snapshot, or a product item.
QUERY_KIND = {"snapshot_to_items": "snapshot", "item_to_snapshots": "item"}

_decode_budget: PixelBudget | None = None  # this process's, made at first use (see _pixel_budget)
_decode_budget_lock = threading.Lock()
_WORKER_SEEN_TTL_S = 60.0
_FIRST_WAIT_S = 1.0
_worker_seen_at = 0.0
_worker_lock = threading.Lock()


class QueryUnavailable(RecommendationUnavailable):
    message = "We could not analyse your photo right now. Please try again in a minute."


class UploadsBusy(RecommendationUnavailable):
    """This process's decoding budget stayed full for ``RECOMMENDER_UPLOAD_DECODE_WAIT_S``."""

    message = "Many photos are being analysed right now. Please try again in a few seconds."


class BrokerUnavailable(QueryUnavailable):
    """The task could not be sent: the broker (or the result store) is unreachable."""

    message = "Photo search is unavailable right now. Please try again in a minute."


@dataclass(frozen=True)
class UploadResult:
    direction: str
    image: CleanImage
    items: list[ItemMatch]
    snapshots: list[SnapshotMatch]
    model_version_id: int
    seconds: float


class PixelBudget:
    """A semaphore counted in pixels: decodes run at once while their pixels fit in ``total``.

    Memory spent decoding grows with the pixels, not the file (a 129 KB PNG of 40 megapixels holds
    about 150 MB while it is decoded), so this, not a count of requests, bounds the web process.
    A picture larger than the whole budget waits until it can be decoded alone.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._changed = threading.Condition()

    def acquire(self, pixels: int, timeout: float) -> bool:
        want = min(pixels, self.total)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.used + want > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            self.used += want
            return True

    def release(self, pixels: int) -> None:
        with self._changed:
            self.used -= min(pixels, self.total)
            self._changed.notify_all()


def _pixel_budget() -> PixelBudget | None:
    global _decode_budget
    total = settings.RECOMMENDER_UPLOAD_DECODE_PIXELS
    if total <= 0:
        return None
    with _decode_budget_lock:
        if _decode_budget is None or _decode_budget.total != total:
            _decode_budget = PixelBudget(total)
        return _decode_budget


@contextmanager
def decode_slot(pixels: int) -> Iterator[None]:
    """Hold ``pixels`` of this process's ``RECOMMENDER_UPLOAD_DECODE_PIXELS`` while a photo is decoded
    (0: no limit); raise :class:`UploadsBusy` when they do not free up within
    ``RECOMMENDER_UPLOAD_DECODE_WAIT_S``."""
    budget = _pixel_budget()
    if budget is None:
        yield
        return
    if not budget.acquire(pixels, settings.RECOMMENDER_UPLOAD_DECODE_WAIT_S):
        raise UploadsBusy()
    try:
        yield
    finally:
        budget.release(pixels)


def _query_worker_available() -> bool:
    """Whether a worker consumes the queries queue (a positive answer is cached for a few seconds)."""
    global _worker_seen_at
    with _worker_lock:
        if time.monotonic() - _worker_seen_at < _WORKER_SEEN_TTL_S:
            return True
    from workers.celery import app

    try:
        replies = app.control.inspect(timeout=0.5).active_queues() or {}
    except Exception:  # noqa: BLE001 - a broker outage means "no worker", shown as a 503
        logger.exception("could not ask the workers which queues they consume")
        return False
    queue = settings.RECOMMENDER_QUERY_QUEUE
    seen = any(q.get("name") == queue for queues in replies.values() for q in (queues or []))
    if seen:
        with _worker_lock:
            _worker_seen_at = time.monotonic()
    return seen


def _revoke_quietly(result) -> None:
    """Revoke a query nobody waits for any more; a broker outage must not turn the 503 into a 500."""
    try:
        result.revoke()
    except Exception as exc:  # noqa: BLE001 - the query expires in the queue anyway
        logger.warning("could not revoke query %s: %r", result.id, exc)


def _forget_quietly(result) -> None:
    try:
        result.forget()
    except Exception as exc:  # noqa: BLE001 - the stored result expires on its own (CELERY_RESULT_EXPIRES)
        logger.warning("could not forget query %s: %r", result.id, exc)


def query_vectors_request(*, image: CleanImage, kind: str, timeout: float | None = None) -> tuple[int, np.ndarray]:
    """Send the picture to ``workers.embed_query`` and wait for ``(model_version_id, float32 vectors)``.

    A listening worker usually answers within the first second, so nobody is asked who is
    listening on the fast path; only a slower answer triggers the check (about half a
    second), so that with no worker the shopper hears it at once instead of after the full
    timeout. Raises :class:`QueryUnavailable` when no worker listens, it fails, or it is too slow.
    """
    from workers.celery import app

    timeout = settings.RECOMMENDER_QUERY_TIMEOUT_S if timeout is None else timeout
    started = time.monotonic()
    payload = base64.b64encode(image.content).decode("ascii")
    try:
        # Publishing also subscribes to the result; the settings bound both waits (config.settings.celery).
        result = app.send_task(
            settings.RECOMMENDER_QUERY_TASK,
            args=[payload, kind],
            queue=settings.RECOMMENDER_QUERY_QUEUE,
            expires=timeout,
        )
    except Exception as exc:  # noqa: BLE001 - kombu, redis-py and Celery's result store each raise their own
        logger.warning("could not send %s (broker unreachable?): %r", settings.RECOMMENDER_QUERY_TASK, exc)
        raise BrokerUnavailable() from exc
    try:
        try:
            body = result.get(timeout=min(_FIRST_WAIT_S, timeout), propagate=True)
        except CeleryTimeoutError:
            if not _query_worker_available():
                _revoke_quietly(result)
                raise QueryUnavailable(
                    "No worker is analysing photos right now. Please try again in a minute."
                ) from None
            body = result.get(timeout=max(0.01, timeout - (time.monotonic() - started)), propagate=True)
    except (CeleryTimeoutError, TaskRevokedError) as exc:
        # TaskRevokedError: the task expired in the queue before a worker picked it up.
        _revoke_quietly(result)
        raise QueryUnavailable("Analysing your photo took too long. Please try again in a minute.") from exc
    except QueryUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - the worker's failure is reported, not re-raised to the shopper
        logger.warning("embed_query failed: %s", exc)
        raise QueryUnavailable() from exc
    finally:
        _forget_quietly(result)
    try:
        return vectors_decode(body)
    except (TypeError, ValueError) as exc:
        logger.warning("embed_query answered something unusable: %s", exc)
        raise QueryUnavailable() from exc


def upload_recommendations(
    *, file, direction: str, filters: Filters | None = None, k: int | None = None, name: str | None = None
) -> UploadResult:
    """Recommendations for an uploaded photo, nothing stored.

    Raises ``ValidationError`` for a bad file, ``ValueError`` for a bad direction,
    and :class:`RecommendationUnavailable` (503) when no model or worker can answer.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    started = time.perf_counter()
    image = validate_image_upload(
        file,
        name=name,
        max_pixels=settings.RECOMMENDER_UPLOAD_MAX_PIXELS,
        max_side=settings.RECOMMENDER_UPLOAD_MAX_SIDE or None,
        decode_slot=decode_slot,
    )
    version = model_version_active()
    if version is None:
        raise NoActiveModel()
    version_id, vectors = query_vectors_request(image=image, kind=QUERY_KIND[direction])
    if version_id != version.pk:
        raise QueryUnavailable("The recommendation model was just updated. Please try again.")
    if vectors.shape[1] != version.dim:
        raise QueryUnavailable()
    items: list[ItemMatch] = []
    snapshots: list[SnapshotMatch] = []
    if direction == "snapshot_to_items":
        items = item_list_for_snapshot(vectors=vectors, k=k, filters=filters, model_version=version)
    else:
        snapshots = snapshot_list_for_item(vectors=vectors, k=k, filters=filters, model_version=version)
    return UploadResult(
        direction=direction,
        image=image,
        items=items,
        snapshots=snapshots,
        model_version_id=version.pk,
        seconds=time.perf_counter() - started,
    )
