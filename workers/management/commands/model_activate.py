from django.core.management.base import CommandError

from workers.management.commands._progress import printer
from workers.management.commands._version import VERSION_ERRORS, VersionCommand
from workers.versioning import switch_to


class Command(VersionCommand):
    help = "Activate a model version: embed every image for it, build its index, then switch in one transaction."

    def handle_version(self, version, **options):
        try:
            switch_to(version, progress=printer(self.stdout, f"re-index {version.name}"))
        except VERSION_ERRORS as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{version.name} is active."))
