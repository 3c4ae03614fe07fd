"""``manage.py catalog_prune_media [--delete]``: list (or delete) image files no catalog row references."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from catalog.services.media import media_orphans, media_orphans_delete


class Command(BaseCommand):
    help = (
        "Find files under MEDIA_ROOT/images and MEDIA_ROOT/thumbs that no item or snapshot references "
        "(deleted rows, rolled-back import batches). Lists them; --delete removes them."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--delete", action="store_true", help="Remove the files (default: only list them).")

    def handle(self, *args, **options) -> None:
        orphans = media_orphans()
        for name in orphans[:20]:
            self.stdout.write(f"  {name}")
        if len(orphans) > 20:
            self.stdout.write(f"  ... and {len(orphans) - 20} more")
        if options["delete"]:
            self.stdout.write(self.style.SUCCESS(f"deleted {media_orphans_delete(orphans)} unreferenced files"))
        else:
            self.stdout.write(f"{len(orphans)} unreferenced files (run with --delete to remove them)")
