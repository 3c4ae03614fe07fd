#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config import devservices

    # Embedded PostgreSQL/Redis start on demand unless real URLs are configured.
    if os.environ.get("LOOKBOOK_NO_DEVSERVICES") != "1":
        devservices.ensure_started()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
