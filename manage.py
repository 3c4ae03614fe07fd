#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config import devservices

    # The one start for management commands: the embedded PostgreSQL/Redis unless real URLs are
    # configured, before the settings read the running server's socket.
    devservices.start_for_command()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
