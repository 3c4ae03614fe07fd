from django.core.management.base import BaseCommand, CommandError

from recommender.versions import version_rollback_target
from workers.management.commands._progress import printer
from workers.management.commands._version import VERSION_ERRORS
from workers.versioning import switch_to


class Command(BaseCommand):
    help = "Switch back to the previously active model version (its vectors are kept; late images are embedded)."

    def handle(self, *args, **options):
        target = version_rollback_target()
        if target is None:
            raise CommandError("There is no previously active version to roll back to.")
        try:
            switch_to(target, progress=printer(self.stdout, f"catch up {target.name}"))
        except VERSION_ERRORS as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Rolled back: {target.name} is active."))
