"""``manage.py import_clothing PATH``: product photos as items (see catalog.importers.clothing)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from catalog.importers.clothing import ClothingImporter
from catalog.importers.command import ImportCommand


class Command(ImportCommand):
    help = "Import the clothing dataset (images.csv + images/) as items with categories. Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The clothing-dataset folder (images.csv, images/).")
        parser.add_argument("--include-kids", action="store_true", help="Also import rows marked kids=True.")
        super().add_arguments(parser)

    def handle(self, *args, **options) -> None:
        try:
            importer = ClothingImporter(
                options["path"].resolve(), limit=options["limit"], include_kids=options["include_kids"]
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"clothing dataset: {len(importer)} rows from {importer.root}")
        self.run_rows(importer, importer.handle, total=len(importer), description="clothing", options=options)
