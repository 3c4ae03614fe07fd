from django.conf import settings
from django.core.management.base import BaseCommand

from workers.management.commands._progress import printer
from workers.versioning import bootstrap_pretrained


class Command(BaseCommand):
    help = (
        "Build the off-the-shelf pretrained model version (no training) so the site recommends at once; "
        "activates it when no version is active and embeds every image for it. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--backbone", default=settings.ML_BACKBONE)

    def handle(self, *args, backbone: str, **options):
        result = bootstrap_pretrained(backbone=backbone, progress=printer(self.stdout, "embedding"))
        self.stdout.write(self.style.SUCCESS(result["message"]))
