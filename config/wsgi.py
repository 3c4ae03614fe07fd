import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# /healthz's view of the workers is refreshed in the background from the start (config.health), so
# the first probe of a freshly started web process does not wait for a broadcast.
from config.health import worker_view  # noqa: E402 - after the application: it needs the settings

worker_view.start()
