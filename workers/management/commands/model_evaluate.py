import time

from django.core.management.base import BaseCommand, CommandError

from recommender.models import ModelVersion
from workers.versioning import evaluate_and_decide


class Command(BaseCommand):
    help = "Evaluate a model version and the active one on the held-out posts; store metrics and the decision."

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int)
        parser.add_argument("--promote", action="store_true", help="Activate the version if it wins.")

    def handle(self, *args, version_id: int, promote: bool, **options):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise CommandError(f"There is no model version with id {version_id}.")
        started = time.monotonic()
        result = evaluate_and_decide(version, promote=promote)
        version.refresh_from_db()
        self.stdout.write(f"metrics: {version.metrics}")
        self.stdout.write(self.style.SUCCESS(f"{result['decision']} ({time.monotonic() - started:.0f}s)"))
