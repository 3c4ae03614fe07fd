"""The options and report shared by the ``import_*`` management commands."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from catalog.importers.base import ImportAborted, ImportStats, run_import


class ImportCommand(BaseCommand):
    """Base for importers: ``--strict``, ``--limit``, ``--batch-size``, ``--no-enqueue``, ``--no-progress``."""

    def add_arguments(self, parser) -> None:
        parser.add_argument("--strict", action="store_true", help="Abort at the first bad row (default: skip it).")
        parser.add_argument("--limit", type=int, default=None, help="Import at most N rows (for trials and tests).")
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Rows per committed batch (CATALOG_IMPORT_BATCH_SIZE)."
        )
        parser.add_argument(
            "--no-enqueue",
            action="store_true",
            help="Do not queue embedding tasks; new rows stay pending for the workers' sweep.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def run_rows(self, rows, handle, *, total: int | None, description: str, options) -> ImportStats:
        if options["limit"] is not None and options["limit"] < 0:
            raise CommandError("--limit must be >= 0")
        try:
            stats = run_import(
                rows,
                handle,
                total=total,
                batch_size=options["batch_size"],
                strict=options["strict"],
                enqueue=not options["no_enqueue"],
                progress=not options["no_progress"],
                description=description,
                log=self.stderr._out,
            )
        except ImportAborted as exc:
            raise CommandError(f"Aborted (--strict): {exc}. Rows of earlier batches are committed.") from exc
        self.report(stats)
        return stats

    def report(self, stats: ImportStats) -> None:
        for reason, count in sorted(stats.skip_reasons.items()):
            self.stdout.write(f"  skipped {count}: {reason}")
        for key, reason in stats.failures[:50]:
            self.stdout.write(f"  failed {key}: {reason}")
        if len(stats.failures) > 50:
            self.stdout.write(f"  ... and {len(stats.failures) - 50} more failures")
        style = self.style.SUCCESS if not stats.failed else self.style.WARNING
        self.stdout.write(style(stats.summary()))
