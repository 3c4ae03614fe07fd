import time

from django.core.management.base import BaseCommand, CommandError

from workers.versioning import train_evaluate_promote


class Command(BaseCommand):
    help = (
        "Train a model version on all published posts, evaluate it and the active version on the held-out "
        "posts, and promote it only if it wins (the switch then runs on the embedding worker)."
    )

    def handle(self, *args, **options):
        started = time.monotonic()
        last = [0.0]

        def progress(fraction: float, message: str = "") -> None:
            if time.monotonic() - last[0] >= 2 or fraction >= 1:
                last[0] = time.monotonic()
                self.stdout.write(f"training: {100 * float(fraction):5.1f}% {message}")

        try:
            result = train_evaluate_promote(progress=progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"version {result['version_id']}: {result['decision']} ({time.monotonic() - started:.0f}s)"
            )
        )
