"""``manage.py import_manifest FILE``: a shop's own posts from a JSON manifest (see catalog.importers.manifest)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from catalog.importers.command import ImportCommand
from catalog.importers.manifest import ManifestError, ManifestImporter


class Command(ImportCommand):
    help = (
        "Import posts (snapshot + items, styles, brands, tags, person) from a JSON manifest; image paths are "
        "relative to the manifest. Format: docs/catalog.md; example: examples/manifest.json. Idempotent."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="The manifest JSON file.")
        super().add_arguments(parser)

    def handle(self, *args, **options) -> None:
        try:
            importer = ManifestImporter(options["file"].resolve(), limit=options["limit"])
        except ManifestError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"manifest {importer.path.name} (source {importer.source!r}): {len(importer)} posts")
        self.run_rows(importer, importer.handle, total=len(importer), description="manifest", options=options)
