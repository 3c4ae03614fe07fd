from django.core.management.base import BaseCommand, CommandError

from recommender.models import IndexState, ModelVersion
from recommender.versions import version_index_state_set
from workers.embedding import reindex
from workers.management.commands._progress import printer
from workers.ml_runtime import ArtifactUnavailable


class Command(BaseCommand):
    help = "Embed every image lacking a version's vectors (resumable) and build its vector index; no switch."

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int)

    def handle(self, *args, version_id: int, **options):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise CommandError(f"There is no model version with id {version_id}.")
        try:
            result = reindex(version=version, progress=printer(self.stdout, f"re-index {version.name}"))
        except ArtifactUnavailable as exc:
            raise CommandError(str(exc)) from exc
        version_index_state_set(version=version, state=IndexState.COMPLETE)
        self.stdout.write(self.style.SUCCESS(f"{result['done']} images embedded, {result['failed']} failed."))
