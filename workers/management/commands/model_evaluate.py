import time

from workers.management.commands._version import VersionCommand
from workers.versioning import evaluate_and_decide


class Command(VersionCommand):
    help = "Evaluate a model version and the active one on the held-out posts; store metrics and the decision."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--promote", action="store_true", help="Activate the version if it wins.")

    def handle_version(self, version, *, promote: bool, **options):
        started = time.monotonic()
        result = evaluate_and_decide(version, promote=promote)
        version.refresh_from_db()
        self.stdout.write(f"metrics: {version.metrics}")
        self.stdout.write(self.style.SUCCESS(f"{result['decision']} ({time.monotonic() - started:.0f}s)"))
