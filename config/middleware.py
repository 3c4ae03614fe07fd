"""Site-wide request guards that run before any view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse


def is_api_request(request: HttpRequest) -> bool:
    """Whether ``request`` is for the API, whose errors are JSON: its path under the API's root as the
    URLconf names it (reversed with the script prefix, so compared with ``request.path``)."""
    try:
        api_root = reverse("recommender:api:api-root")
    except NoReverseMatch:
        return False
    return request.path.startswith(api_root)


class RejectNulBytesMiddleware:
    """A 400 for a NUL byte in the path, the query string (a parameter's name or value) or, outside the
    API, a form body's fields (form-encoded or multipart; forms that do not use Django's CharField, such as
    django-celery-beat's task field, would pass it on to the database).

    PostgreSQL refuses NUL in text, so such a value that reached a query would be a 500; none names
    anything here. Django's form fields already refuse it (``ProhibitNullCharactersValidator``);
    this covers the query strings read outside forms: the shoppers' filters, the admin's list
    filters and search, and any parameter a later view reads. The API answers in its JSON error
    format (``{"message": ..., "detail": ...}``), every other path with the site's 400 page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._nul_in(request)
        if where is None:
            return self.get_response(request)
        message = f"The request's {where} contains a NUL byte."
        if is_api_request(request):
            return JsonResponse({"message": message, "detail": {"where": where}}, status=400)
        return HttpResponseBadRequest(render_to_string("400.html", {"message": message}, request=request))

    @staticmethod
    def _nul_in(request: HttpRequest) -> str | None:
        if "\x00" in request.path_info:
            return "path"
        for name, values in request.GET.lists():
            if "\x00" in name:
                return "parameter name"
            if any("\x00" in value for value in values):
                return f"parameter {name!r}"
        if (
            request.method == "POST"
            and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            and not is_api_request(request)  # the API parses its own bodies
        ):
            try:
                fields = request.POST.lists()
            except Exception:  # noqa: BLE001 - an unreadable body is the view's to refuse, in its format
                return None
            for name, values in fields:
                if "\x00" in name or any("\x00" in value for value in values):
                    return "form field" if "\x00" in name else f"form field {name!r}"
        return None
