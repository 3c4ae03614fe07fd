"""``manage.py import_ccp PATH [--split train|val|all]``: CCP-Posts into the catalog (see catalog.importers.ccp)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from catalog.importers.ccp import IMPORT_SPLITS, CcpImporter
from catalog.importers.command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import Clothing Co-Parsing: posts (pixel-level photos with their garment crops as items, "
        "category = CCP label) and, with --split all, the tag-only photos as snapshots with tags. "
        "Idempotent: rows already imported are skipped."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", type=Path, help="The CCP folder (photos/, annotations/, label_list.mat).")
        parser.add_argument(
            "--split",
            choices=IMPORT_SPLITS,
            default="all",
            help="train (0001-0600), val (0601-0800) or all (train + val + tag-only photos). Default: all.",
        )
        super().add_arguments(parser)

    def handle(self, *args, **options) -> None:
        try:
            importer = CcpImporter(options["path"].resolve(), split=options["split"], limit=options["limit"])
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"CCP {options['split']}: {len(importer)} rows from {importer.root}")
        self.run_rows(importer, importer.handle, total=len(importer), description="ccp", options=options)
