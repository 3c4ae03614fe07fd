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
from dataclasses import dataclass, field
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
from recommender.selectors.similarity.pieces import (
    Garment,
    GarmentPick,
    item_list_for_garment,
    look_picks,
    matched_garments,
)
from recommender.wire import garments_decode, vectors_decode

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
    """What an upload found. A street photo: its ``garments`` and one pick per garment (``picks``), and
    ``items``, the whole photo's top k (the answer when no garment was found); searched by a ``box``, the
    items for that piece only. A product photo: ``snapshots``."""

    direction: str
    image: CleanImage
    items: list[ItemMatch]
    snapshots: list[SnapshotMatch]
    model_version_id: int
    seconds: float
    garments: list[Garment] = field(default_factory=list)
    picks: list[GarmentPick] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    group: str | None = None
    matched: dict[int, Garment] = field(default_factory=dict)  # product photo: the garment each look matched


@dataclass(frozen=True)
class QueryAnswer:
    """A query worker's answer: the version, the vectors (n, dim), and a snapshot's garment records."""

    model_version_id: int
    vectors: np.ndarray
    garments: list[dict]


MIN_BOX_SIDE = 0.02  # of the photo: a box thinner than this holds too few pixels to describe


BOX_FORMAT = "A box is four numbers: left, top, right, bottom, as fractions of the photo."


def box_parse(text: str | None, *, scale: float = 1.0) -> list[float] | None:
    """``"l,t,r,b"`` (a form or API field) -> four numbers divided by ``scale`` (100 for percent), None when
    empty; ``ValueError`` when it is not four numbers. :func:`box_clean` checks the box itself."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    if len(parts) != 4 or any(len(part) > 32 for part in parts):
        raise ValueError(BOX_FORMAT)
    try:
        return [float(part) / scale for part in parts]
    except ValueError:
        raise ValueError(BOX_FORMAT) from None


def box_clean(box) -> tuple[float, float, float, float]:
    """A shopper's box (left, top, right, bottom) in fractions of the photo, checked: four finite numbers in
    [0, 1], each side at least ``MIN_BOX_SIDE``; ``ValueError`` with a shopper-readable reason."""
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(BOX_FORMAT) from None
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(BOX_FORMAT)
    left, top, right, bottom = values
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise ValueError("The box must lie inside the photo, with left < right and top < bottom.")
    if right - left < MIN_BOX_SIDE or bottom - top < MIN_BOX_SIDE:
        raise ValueError("The box is too small: draw it around the whole piece.")
    return values


def _crop(image: CleanImage, box: tuple[float, float, float, float]) -> CleanImage:
    """The box of the cleaned picture as a cleaned picture of its own (PNG: no second lossy step)."""
    import dataclasses
    import io

    picture = image.open().convert("RGB")
    left, top, right, bottom = box
    pixels = (
        int(left * picture.width),
        int(top * picture.height),
        max(int(left * picture.width) + 1, round(right * picture.width)),
        max(int(top * picture.height) + 1, round(bottom * picture.height)),
    )
    piece = picture.crop(pixels)
    out = io.BytesIO()
    piece.save(out, format="PNG")
    return dataclasses.replace(image, content=out.getvalue(), format="PNG", width=piece.width, height=piece.height)


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


def query_vectors_request(*, image: CleanImage, kind: str, timeout: float | None = None) -> QueryAnswer:
    """Send the picture to ``workers.embed_query`` and wait for its :class:`QueryAnswer`.

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
        version_id, vectors = vectors_decode(body)
        return QueryAnswer(version_id, vectors, garments_decode(body, rows=len(vectors)))
    except (TypeError, ValueError, AttributeError) as exc:
        logger.warning("embed_query answered something unusable: %s", exc)
        raise QueryUnavailable() from exc


def upload_recommendations(
    *,
    file,
    direction: str,
    filters: Filters | None = None,
    k: int | None = None,
    name: str | None = None,
    box=None,
    group: str | None = None,
) -> UploadResult:
    """Recommendations for an uploaded photo, nothing stored.

    A street photo (``snapshot_to_items``) answers with its garments, one pick per garment and the whole
    photo's top k; with a ``box`` (fractions of the photo: a detected garment the shopper tapped, or a box
    they drew) only that piece is described and searched, among ``group``'s categories when given.
    Raises ``ValidationError`` for a bad file, ``ValueError`` for a bad direction, box or group, and
    :class:`RecommendationUnavailable` (503) when no model or worker can answer.
    """
    from recommender.selectors.similarity.pieces import GARMENT_NAMES

    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    if box is not None:
        if direction != "snapshot_to_items":
            raise ValueError("A box picks a piece of a street photo: search for pieces (snapshot_to_items).")
        box = box_clean(box)
    if group is not None and group not in GARMENT_NAMES:
        raise ValueError(f"unknown garment group {group!r}")
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
    kind = "item" if box is not None else QUERY_KIND[direction]
    answer = query_vectors_request(image=_crop(image, box) if box is not None else image, kind=kind)
    if answer.model_version_id != version.pk:
        raise QueryUnavailable("The recommendation model was just updated. Please try again.")
    if answer.vectors.shape[1] != version.dim:
        raise QueryUnavailable()
    vectors = answer.vectors
    items: list[ItemMatch] = []
    snapshots: list[SnapshotMatch] = []
    garments: list[Garment] = []
    picks: list[GarmentPick] = []
    matched: dict[int, Garment] = {}
    if box is not None:
        _, items = item_list_for_garment(vector=vectors[0], group=group, k=k, filters=filters, model_version=version)
    elif direction == "snapshot_to_items":
        items = item_list_for_snapshot(vectors=vectors, k=k, filters=filters, model_version=version)
        if answer.garments:
            garments, picks = look_picks(
                vectors=vectors, garments=answer.garments, filters=filters, model_version=version
            )
    else:
        snapshots = snapshot_list_for_item(vectors=vectors, k=k, filters=filters, model_version=version)
        matched = matched_garments(vector=vectors[0], matches=snapshots, model_version=version)
    return UploadResult(
        direction=direction,
        image=image,
        items=items,
        snapshots=snapshots,
        model_version_id=version.pk,
        seconds=time.perf_counter() - started,
        garments=garments,
        picks=picks,
        box=box,
        group=group,
        matched=matched,
    )
