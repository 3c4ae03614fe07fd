"""Measure "shop the look" on the catalog: one pick per garment beside the whole photo's top k.

    python manage.py measure_looks --ccp-split val        # CCP-Posts val posts (ccp:post:0601..0800)
    python manage.py measure_looks                         # every published post with curated items

Uses the active model version's stored vectors and garments and the selectors the pages use
(``recommender.measure_looks``); read-only.
"""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from catalog.models import Snapshot
from catalog.selectors import ccp_post_snapshots
from recommender.measure_looks import measure_looks
from recommender.selectors import model_version_active


class Command(BaseCommand):
    help = "One pick per garment vs the whole photo's top k, on posts with curated items (read-only)."

    def add_arguments(self, parser):
        parser.add_argument("--ccp-split", choices=["train", "val"], help="Only the CCP-Posts posts of this split.")
        parser.add_argument("--k", type=int, default=6, help="Results of the whole-photo and per-piece lists.")

    def handle(self, *args, ccp_split=None, k=6, **options):
        version = model_version_active()
        if version is None:
            raise CommandError("No model version is active: nothing to measure with.")
        snapshots = Snapshot.objects.published()
        if ccp_split:
            snapshots = ccp_post_snapshots(split=ccp_split).published()
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            if done % 20 == 0 or done == total:
                elapsed = time.monotonic() - started
                left = elapsed / done * (total - done)
                print(f"  {done}/{total} posts, {elapsed:.0f}s, about {left:.0f}s left", file=sys.stderr)

        report = measure_looks(snapshots=snapshots, k=k, progress=progress)
        self.stdout.write(f"model version {version.pk} ({version.name}); {report.seconds:.1f}s")
        for line in report.lines():
            self.stdout.write(line)
