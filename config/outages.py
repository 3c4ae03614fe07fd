"""What the site answers while PostgreSQL is unreachable: a 503 with Retry-After, never a raw 500.

``DatabaseUnavailableMiddleware`` turns a failed connection (the server stopped, restarting,
refusing connections, or not answering within ``connect_timeout``: config.settings.database) into
a small error page, or JSON for the API (whose django-ninja handler calls
:func:`database_unavailable_response` too, since ninja answers DEBUG errors itself). Any other
database error is left alone: it is a bug, shown as one. Nothing is cached: the next request
connects again, so the site recovers by itself when the server is back.
"""

from __future__ import annotations

import logging

import psycopg
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from config.middleware import is_api_request

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 30
MESSAGE = "The site is briefly unavailable. Please try again in a minute."
# SQLSTATEs of a connection that failed or was cut by the server: class 08 (connection exception),
# admin/crash shutdown, "the database system is starting up / shutting down", too many connections.
_CONNECTION_STATES = {"57P01", "57P02", "57P03", "53300"}


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (and not that a statement failed)."""
    if isinstance(exc, InterfaceError):
        return True  # the connection is closed or unusable
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if not isinstance(cause, psycopg.OperationalError):
        return False
    # libpq's own failures (no server, refused, timed out, connection lost) carry no SQLSTATE;
    # statement failures such as a statement timeout (57014) or a deadlock (40P01) do.
    state = cause.sqlstate
    return state is None or state.startswith("08") or state in _CONNECTION_STATES


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503: JSON for the API, a small page (rendered without the database) for everything else."""
    if is_api_request(request):
        response = JsonResponse({"message": MESSAGE, "detail": "database unavailable"}, status=503)
    else:
        response = HttpResponse(render_to_string("503.html", {"message": MESSAGE}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


class DatabaseUnavailableMiddleware:
    """A view that cannot reach PostgreSQL answers 503 with Retry-After (see the module docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unreachable(exception):
            return None
        logger.error("database unreachable, answering 503 for %s: %s", request.path, exception)
        return database_unavailable_response(request)
