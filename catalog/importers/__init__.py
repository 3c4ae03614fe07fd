"""Importers behind the ``import_*`` management commands: datasets and shop manifests into the catalog."""
