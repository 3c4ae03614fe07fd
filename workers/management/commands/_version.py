"""The shared part of the commands that act on one model version, given by id."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommender.models import ModelVersion
from recommender.versions import VersionSwitchError
from workers.ml_runtime import ArtifactUnavailable

# What staff can cause and read as a message: a refused switch, an unusable artifact.
VERSION_ERRORS = (VersionSwitchError, ArtifactUnavailable)


class VersionCommand(BaseCommand):
    """``manage.py <command> <version_id>``: subclasses implement ``handle_version(version, **options)``."""

    def add_arguments(self, parser):
        parser.add_argument("version_id", type=int)

    def handle(self, *args, version_id: int, **options):
        version = ModelVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise CommandError(f"There is no model version with id {version_id}.")
        self.handle_version(version, **options)

    def handle_version(self, version: ModelVersion, **options) -> None:
        raise NotImplementedError
