"""Secrets, hosts and HTTPS. With DEBUG on they have development values; with DEBUG off (production)
the secret key and host names are required and a missing one stops start-up with a clear message."""

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config import env
from config.settings.base import DEBUG

if DEBUG:
    SECRET_KEY = env.get("SECRET_KEY", "django-insecure-local-development-only-key-change-me-0123456789")
    ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
else:
    SECRET_KEY = env.require("SECRET_KEY", "DEBUG is off, so a real secret key is needed (50+ random characters).")
    ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "The environment variable ALLOWED_HOSTS must be set: DEBUG is off, so list the host names "
            "this site is served under, comma-separated (e.g. ALLOWED_HOSTS=shop.example.com)."
        )

# Content-Security-Policy (django-csp), in DEBUG and production alike: everything from this site only.
# No inline script or style anywhere (the pages, the admin and /api/docs load theirs from static files;
# django-celery-beat's inline script is moved to static/js/admin-periodic-task.js). data: images are
# the upload page's preview of the shopper's photo and the icons in Swagger UI's and the admin's CSS.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Origins (scheme + host) a cross-site form POST may come from, e.g. behind a proxy on another host.
CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS", [])

if not DEBUG:
    # The TLS-terminating proxy in front says which scheme the shopper used.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # 0 for a plain-HTTP trial on localhost (.env.example).
    SECURE_SSL_REDIRECT = env.get_bool("SECURE_SSL_REDIRECT", True)
    # /healthz is probed over plain HTTP inside the container network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # One year, the value HSTS preload lists ask for.
    SECURE_HSTS_SECONDS = env.get_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
