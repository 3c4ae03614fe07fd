from django.core.management.base import CommandError

from workers.management.commands._progress import printer
from workers.management.commands._version import VersionCommand
from workers.ml_runtime import ArtifactUnavailable
from workers.versioning import reindex_and_complete


class Command(VersionCommand):
    help = "Embed every image lacking a version's vectors (resumable) and build its vector index; no switch."

    def handle_version(self, version, **options):
        try:
            result = reindex_and_complete(version, progress=printer(self.stdout, f"re-index {version.name}"))
        except ArtifactUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{result['done']} images embedded, {result['failed']} failed."))
