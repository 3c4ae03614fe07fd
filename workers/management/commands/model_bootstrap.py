from django.conf import settings
from django.core.management.base import BaseCommand

from workers.management.commands._progress import printer
from workers.versioning import bootstrap_first_version


class Command(BaseCommand):
    help = (
        "Build the first model version so the site recommends at once: the trained model shipped in the "
        "repository (ML_BOOTSTRAP_MODEL=shipped, the default) or the off-the-shelf backbone (--pretrained); "
        "activates it when no version is active and embeds every image for it. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model",
            choices=["shipped", "pretrained"],
            default=settings.ML_BOOTSTRAP_MODEL,
            help="which first model (default: ML_BOOTSTRAP_MODEL)",
        )
        parser.add_argument("--backbone", default=settings.ML_BACKBONE, help="backbone of the pretrained model")

    def handle(self, *args, model: str, backbone: str, **options):
        result = bootstrap_first_version(model=model, backbone=backbone, progress=printer(self.stdout, "embedding"))
        self.stdout.write(self.style.SUCCESS(result["message"]))
