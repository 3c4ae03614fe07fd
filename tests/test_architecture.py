"""The layering rules of docs/architecture.md that a test can hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_web_process_never_imports_tensorflow_or_keras():
    # What a web worker loads: the WSGI application (settings, every app and its admin), the URL
    # configuration with every view and the API, and the admin site's registered model admins.
    code = (
        "import sys\n"
        "from config.wsgi import application\n"
        "import config.urls\n"
        "from django.contrib import admin\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "assert admin.site._registry, 'no model admin was registered'\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras', 'tf_keras'})\n"
        "print(heavy[:5])\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
