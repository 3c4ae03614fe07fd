"""The import loop shared by every importer: batches, savepoints, counts, progress, strict mode.

Each row runs in its own savepoint inside a batch transaction of ``batch_size`` rows; a batch
commits before the next starts, so a crash loses at most the batch in flight. A failing row is
rolled back alone and counted with its reason (``strict`` aborts instead). Embedding tasks for
the rows created in a batch are queued once that batch commits (chunks of
``CATALOG_EMBED_BATCH_SIZE`` ids, at the bulk priority: behind staff's own posts), unless
``enqueue`` is off: then the rows stay ``pending`` for the workers' sweep.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DataError, IntegrityError, transaction
from tqdm import tqdm

from catalog.services.embedding_queue import embeddings_enqueue


class RowSkipped(Exception):  # noqa: N818 - an outcome, not an error
    """Raised by a row handler: the row is fine but deliberately not imported (the reason is reported)."""


class RowFailed(Exception):
    """Raised by a row handler: the row is bad (the reason is reported; ``--strict`` aborts)."""


class ImportAborted(Exception):
    """A row failed in strict mode; rows of earlier batches stay committed."""


@dataclass
class Row:
    key: str  # the row's identity in messages (and usually its source_key)
    data: Any


@dataclass
class Created:
    """What a row handler made: ids to embed."""

    item_ids: list[int] = field(default_factory=list)
    snapshot_ids: list[int] = field(default_factory=list)


@dataclass
class ImportStats:
    created: int = 0
    skipped: int = 0
    failed: int = 0
    items_created: int = 0
    snapshots_created: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"created {self.created}, skipped {self.skipped}, failed {self.failed} "
            f"(snapshots created {self.snapshots_created}, items created {self.items_created})"
        )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(
                f"{msg}" if field == "__all__" or msg.startswith(f"{field}") else f"{field}: {msg}"
                for field, errors in exc.message_dict.items()
                for msg in errors
            )
        return "; ".join(exc.messages)
    return str(exc).strip() or type(exc).__name__


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_import(
    rows: Iterable[Row],
    handle: Callable[[Row], Created],
    *,
    total: int | None = None,
    batch_size: int | None = None,
    strict: bool = False,
    enqueue: bool = True,
    progress: bool = True,
    description: str = "import",
    log: TextIO | None = None,
) -> ImportStats:
    """Run ``handle`` on every row; return the counts. ``handle`` raises RowSkipped/RowFailed/ValidationError."""
    batch_size = batch_size or settings.CATALOG_IMPORT_BATCH_SIZE
    stats = ImportStats()
    log = log or sys.stderr
    bar = tqdm(total=total, desc=description, unit="row", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for batch in _batches(rows, batch_size):
            with transaction.atomic():
                made = Created()
                for row in batch:
                    try:
                        with transaction.atomic():
                            result = handle(row)
                    except RowSkipped as exc:
                        stats.skipped += 1
                        reason = str(exc)
                        stats.skip_reasons[reason] = stats.skip_reasons.get(reason, 0) + 1
                    except (
                        RowFailed,
                        ValidationError,
                        IntegrityError,
                        DataError,
                        OSError,
                        ValueError,
                        KeyError,
                    ) as exc:
                        # The row's savepoint is rolled back; IntegrityError covers a concurrent import of the row.
                        reason = _reason(exc)
                        if strict:
                            raise ImportAborted(f"{row.key}: {reason}") from exc
                        stats.failed += 1
                        stats.failures.append((row.key, reason))
                        bar.write(f"failed {row.key}: {reason}", file=log)
                    else:
                        stats.created += 1
                        stats.items_created += len(result.item_ids)
                        stats.snapshots_created += len(result.snapshot_ids)
                        made.item_ids += result.item_ids
                        made.snapshot_ids += result.snapshot_ids
                    bar.update(1)
                    bar.set_postfix(created=stats.created, skipped=stats.skipped, failed=stats.failed, refresh=False)
                if enqueue:
                    # bulk: a post saved in the admin meanwhile is embedded ahead of the import's backlog
                    embeddings_enqueue(item_ids=made.item_ids, snapshot_ids=made.snapshot_ids, priority="bulk")
    finally:
        bar.close()
    return stats
