from django.core.management.base import BaseCommand, CommandError

from recommender.models import ModelVersion
from recommender.versions import VersionSwitchError
from workers.management.commands._progress import printer
from workers.ml_runtime import ArtifactUnavailable
from workers.versioning import switch_to


class Command(BaseCommand):
    help = "Activate a model version: embed every image for it, build its index, then switch in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int)

    def handle(self, *args, version_id: int, **options):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise CommandError(f"There is no model version with id {version_id}.")
        try:
            switch_to(version, progress=printer(self.stdout, f"re-index {version.name}"))
        except (VersionSwitchError, ArtifactUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{version.name} is active."))
