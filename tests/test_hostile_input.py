"""Hostile input to every endpoint: NUL bytes, over-long and malformed values, broken multipart bodies.

Nothing here names an endpoint or a parameter. The routes come from the URLconf; the API's
parameters and form fields from its OpenAPI schema; a page's parameters from the forms and links
it renders (fetched first with real ids). So a new endpoint, API parameter or form field is covered
without editing this file. Every answer must be below 500, and an API operation's error must be its
JSON ``{"message": ...}``; a page's error is HTML. Both in DEBUG and with DEBUG off.

``pytest tests/test_hostile_input.py -s`` prints the status counts (docs/reliability.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from django.contrib import admin
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.recommender.conftest import (  # noqa: F401 - the recommender's test catalog
    catalog_rows,
    reco_catalog,
    rng,
    store_garments,
)

pytestmark = pytest.mark.django_db

# Query-string values, already percent-encoded: NUL alone and inside a word, over-long, numbers
# out of every range, non-numbers, and bytes that are not UTF-8.
HOSTILE_QUERY_VALUES = ["%00", "a%00b", "x" * 5000, "9" * 40, "-1", "1.5", "%ff%fe", "%", "%2e%2e%2f"]
# Path segments (after the route's own converter has matched or not).
HOSTILE_PATH_VALUES = ["%00", "a%00b", "9" * 40, "-1", "abc", "x" * 5000]
# Form-field values sent in a well-formed multipart body.
HOSTILE_FORM_VALUES = ["\x00", "a\x00b", "x" * 5000, "9" * 40, "-1", "\udcff".encode("utf-8", "surrogatepass")]
BOUNDARY = "hostileboundary"
NOT_AN_IMAGE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32  # a PNG signature and nothing after it


# --- what the site serves ------------------------------------------------------------------------


@dataclass
class Route:
    template: str  # "/snapshots/{pk}/" with the URLconf's own parameter names
    params: list[str]
    admin_model: type | None = None  # the model of an admin route, for a real object id

    def fill(self, values: dict[str, str]) -> str:
        return self.template.format(**values)


def _route_template(pattern: str) -> tuple[str, list[str]]:
    names: list[str] = []

    def named(match: re.Match) -> str:
        names.append(match.group("name"))
        return "{" + match.group("name") + "}"

    template = re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", named, pattern)
    template = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", named, template)
    return "/" + template.lstrip("^").rstrip("$"), names


def url_routes() -> list[Route]:
    """Every URL pattern of the URLconf, with its parameters."""
    admin_prefixes = {f"admin/{m._meta.app_label}/{m._meta.model_name}/": m for m in admin.site._registry}
    routes = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                raw = prefix + str(p.pattern)
                template, params = _route_template(raw)
                model = next((m for pre, m in admin_prefixes.items() if raw.startswith(pre)), None)
                routes.append(Route(template=template, params=params, admin_model=model))

    walk(get_resolver().url_patterns, "")
    unique = {r.template: r for r in routes}
    return list(unique.values())


@dataclass
class Operation:
    method: str
    template: str
    path_params: list[str]
    query_params: list[str]
    form_fields: list[str] = field(default_factory=list)
    file_fields: list[str] = field(default_factory=list)


def api_operations() -> list[Operation]:
    """Every operation of the OpenAPI schema, with its path and query parameters and multipart fields."""
    from recommender.api import api

    schema = api.get_openapi_schema()  # paths include the API's mount point
    operations = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = op.get("parameters", [])
            body = op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
            properties = _resolve(schema, body).get("properties", {})
            operations.append(
                Operation(
                    method=method.upper(),
                    template=path,
                    path_params=[p["name"] for p in params if p["in"] == "path"],
                    query_params=[p["name"] for p in params if p["in"] == "query"],
                    form_fields=[n for n, s in properties.items() if _resolve(schema, s).get("format") != "binary"],
                    file_fields=[n for n, s in properties.items() if _resolve(schema, s).get("format") == "binary"],
                )
            )
    return operations


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        target = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


class _FormsAndLinks(HTMLParser):
    """The parameter names a page offers: its forms' fields (by method and action) and its links' query keys."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.link_params: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (attrs.get("method") or "get").upper(),
                    "action": attrs.get("action") or "",
                    "fields": {},
                    "multipart": "multipart" in (attrs.get("enctype") or ""),
                }
            )
        elif tag in ("input", "select", "textarea", "button") and self.forms and attrs.get("name"):
            if attrs.get("type") != "file":
                self.forms[-1]["fields"].setdefault(attrs["name"], attrs.get("value") or "")
            else:
                self.forms[-1]["fields"].setdefault(attrs["name"], None)
        elif tag == "a" and attrs.get("href") and "?" in attrs["href"]:
            self.link_params.update(k for k, _ in parse_qsl(urlsplit(attrs["href"]).query, keep_blank_values=True))


# --- the probe -------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every answer's status, and what was wrong with the bad ones."""

    api_paths: list[re.Pattern]  # the API's operations: their errors are JSON
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    baseline: dict[str, int] = field(default_factory=dict)  # path -> status of its plain GET
    kinds: Counter = field(default_factory=Counter)  # requests per kind of hostile input
    parameters: set[tuple[str, str]] = field(default_factory=set)  # (path, name) given hostile values
    forms: set[str] = field(default_factory=set)  # POST targets given hostile fields and bodies
    # Over HTTP: a 4xx without this header came from the server in front of Django (gunicorn's own
    # "request line too large"), counted but not held to the endpoint's format.
    django_header: str | None = None

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def check(self, response, *, what: str, path: str) -> None:
        status = response.status_code
        self.statuses[status] += 1
        content_type = response.get("Content-Type", "")
        if status >= 500:
            # A 503 is the endpoint's own answer when its plain request gets one too (/healthz with no worker).
            if not (status == 503 and self.baseline.get(path) == 503):
                self.failures.append(f"{status} {what}")
        elif status >= 400 and self.django_header and response.get(self.django_header) is None:
            self.kinds["answered by the server before Django"] += 1
        elif status >= 400 and any(p.fullmatch(path) for p in self.api_paths):
            if not content_type.startswith("application/json"):
                self.failures.append(f"{status} not JSON ({content_type}) {what}")
            elif "message" not in response.json():
                self.failures.append(f"{status} JSON without a message {what}")
        elif status >= 400 and response.content and not content_type.startswith(("text/html", "application/json")):
            # A page's error is a page (JSON too under the API's prefix); never e.g. a plain-text traceback.
            self.failures.append(f"{status} error neither HTML nor JSON ({content_type}) {what}")


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = BOUNDARY) -> bytes:
    out = []
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode())
        if filename is not None:
            out.append(b"Content-Type: application/octet-stream\r\n")
        out.append(b"\r\n" + value + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def malformed_bodies(fields: dict[str, str], file_fields: list[str]) -> list[tuple[str, str, bytes]]:
    """(label, content type, body) for a POST target with these fields: each broken in its own way."""
    good_parts = [(n, None, _as_bytes(v)) for n, v in fields.items()]
    good_parts += [(n, "photo.png", NOT_AN_IMAGE) for n in file_fields]
    good = _multipart(good_parts)
    long_name = [(n, "x" * 5000 + ".png", NOT_AN_IMAGE) for n in file_fields] or [("field", "x" * 5000, b"v")]
    many_fields = [(f"f{i}", None, b"v") for i in range(1200)]  # over DATA_UPLOAD_MAX_NUMBER_FIELDS
    many_files = [(file_fields[0] if file_fields else "file", f"{i}.png", NOT_AN_IMAGE) for i in range(120)]
    big_field = [("big", None, b"v" * 4096)]  # over the DATA_UPLOAD_MAX_MEMORY_SIZE the test sets
    mp = f"multipart/form-data; boundary={BOUNDARY}"
    return [
        ("no boundary", "multipart/form-data", good),
        ("empty boundary", "multipart/form-data; boundary=", good),
        ("over-long boundary", "multipart/form-data; boundary=" + "b" * 200, good),
        ("garbage body", mp, b"\xff\xfe garbage \x00 not multipart at all" * 50),
        ("empty body", mp, b""),
        ("truncated body", mp, good[: len(good) // 2]),
        ("no closing boundary", mp, good[: -len(f"--{BOUNDARY}--\r\n")]),
        ("5000-character filename", mp, _multipart(good_parts + long_name)),
        ("NUL in filename", mp, _multipart(good_parts + [("x", "a\x00b.png", NOT_AN_IMAGE)])),
        ("NUL in field name", mp, _multipart(good_parts + [("a\x00b", None, b"v")])),
        ("part without a name", mp, b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nv\r\n"),
        ("1200 fields", mp, _multipart(good_parts + many_fields)),
        ("120 files", mp, _multipart(good_parts + many_files)),
        ("field over the body limit", mp, _multipart(good_parts + big_field)),
        ("unknown charset", mp + "; charset=no-such-charset", good),
        ("urlencoded garbage", "application/x-www-form-urlencoded", b"a=%ff%fe&%00=%00&&=&b=%zz"),
        ("JSON body", "application/json", b'{"image": null, "direction": ["x"]'),
    ]


class Prober:
    """Sends the hostile requests and tallies the answers."""

    def __init__(self, *, staff_user, real_ids: dict[type, str], client=None, django_header: str | None = None):
        """``client``: makes a client with the test client's ``get``/``generic``/``force_login`` (by default
        Django's test client, counting a 500 instead of raising it)."""
        client = client or (lambda: Client(raise_request_exception=False))
        self.anonymous, self.staff = client(), client()
        self.staff_user, self.real_ids = staff_user, real_ids
        api_paths = [re.compile(re.sub(r"\\{\w+\\}", "[^/]*", re.escape(op.template))) for op in api_operations()]
        self.tally = Tally(api_paths=api_paths, django_header=django_header)

    def clients_for(self, path: str) -> list[Client]:
        """Admin pages as a visitor and as staff (who sees the forms); the shop as a visitor.

        Staff is logged in again each time: a form posted before (the logout, a password change) may
        have ended the session.
        """
        if not path.startswith("/admin/"):
            return [self.anonymous]
        self.staff.force_login(self.staff_user)
        return [self.anonymous, self.staff]

    def real_id(self, route: Route, name: str) -> str:
        """An existing row's id for a path parameter: the admin route's model, else the model the name says."""
        if route.admin_model is not None:
            return self.real_ids.get(route.admin_model, "1")
        words = [name.removesuffix("_id")] + [w.removesuffix("s") for w in route.template.split("/") if "{" not in w]
        for word in words:
            for model, pk in self.real_ids.items():
                if model._meta.model_name == word:
                    return pk
        return "1"

    def real_path(self, route: Route) -> str:
        return route.fill({name: self.real_id(route, name) for name in route.params})

    def get(self, client: Client, path: str, query: str = "", *, kind: str = "plain GET") -> HttpResponse:
        self.tally.kinds[kind] += 1
        response = client.get(f"{path}?{query}" if query else path)
        if not query and path not in self.tally.baseline:
            self.tally.baseline[path] = response.status_code
        self.tally.check(response, what=f"GET {path}?{query[:120]}", path=path)
        return response

    def post(self, client: Client, path: str, body: bytes, content_type: str, *, label: str, kind: str) -> None:
        self.tally.kinds[kind] += 1
        response = client.generic("POST", path, body, content_type=content_type)
        self.tally.check(response, what=f"POST {path} [{label}]", path=path)

    def post_fields(
        self, client: Client, path: str, fields: dict[str, str], file_fields: list[str], *, each_field: bool = True
    ) -> None:
        """Each field in turn with each hostile value (multipart; urlencoded too when there is no file),
        then the malformed bodies. ``each_field=False``: the malformed bodies only."""
        self.tally.forms.add(path)
        for name in list(fields) + file_fields if each_field else []:
            for value in HOSTILE_FORM_VALUES:
                label = f"{name}={_as_bytes(value)[:12]!r}"
                parts = [(n, None, _as_bytes(value if n == name else v)) for n, v in fields.items()]
                parts += [(n, "photo.png", _as_bytes(value) if n == name else NOT_AN_IMAGE) for n in file_fields]
                multipart = f"multipart/form-data; boundary={BOUNDARY}"
                self.post(client, path, _multipart(parts), multipart, label=label, kind="form field")
                if not file_fields and value == HOSTILE_FORM_VALUES[0]:
                    body = urlencode({n: _as_bytes(value if n == name else v) for n, v in fields.items()}).encode()
                    urlencoded = "application/x-www-form-urlencoded"
                    self.post(client, path, body, urlencoded, label="urlencoded " + label, kind="form field")
        for label, content_type, body in malformed_bodies(fields, file_fields):
            self.post(client, path, body, content_type, label=label, kind="malformed body")

    def hostile_gets(self, client: Client, route: Route, path: str, params: Iterable[str]) -> None:
        for name in params:
            self.tally.parameters.add((path, name))
            for value in HOSTILE_QUERY_VALUES:
                self.get(client, path, f"{quote(name)}={value}", kind="query value")
        self.get(client, path, "%00=1", kind="query name")  # NUL in a parameter's name
        for name in route.params:
            self.tally.parameters.add((route.template, name))
            for value in HOSTILE_PATH_VALUES:
                hostile = route.fill({**{p: self.real_id(route, p) for p in route.params}, name: value})
                self.get(client, hostile, kind="path value")


def probe_everything(prober: Prober) -> None:
    operations = api_operations()
    routes = url_routes()
    by_template = {r.template: r for r in routes}
    # The API: the parameters and fields its schema declares.
    for op in operations:
        route = by_template[op.template]
        path = prober.real_path(route)
        if op.method == "GET":
            prober.get(prober.anonymous, path)
            prober.hostile_gets(prober.anonymous, route, path, op.query_params)
        elif op.method == "POST":
            prober.post_fields(prober.anonymous, path, dict.fromkeys(op.form_fields, ""), op.file_fields)
    # Everything else: the parameters its pages' forms and links use, and the forms they post.
    api_templates = {op.template for op in operations}
    post_targets: dict[str, dict[str, str | None]] = {}
    for route in routes:
        if route.template in api_templates:
            continue
        path = prober.real_path(route)
        for client in prober.clients_for(path):
            page = prober.get(client, path)
            found = _FormsAndLinks()
            if page.get("Content-Type", "").startswith("text/html"):
                found.feed(page.content.decode("utf-8", "replace"))
            params = set(found.link_params)
            for form in found.forms:
                if form["method"] == "GET":
                    params.update(form["fields"])
                else:
                    post_targets.setdefault(urlsplit(form["action"] or path).path, {}).update(form["fields"])
            prober.hostile_gets(client, route, path, sorted(params))
    # Deletions last, so that every other form still finds its object.
    for action in sorted(post_targets, key=lambda a: "/delete/" in a):
        fields = post_targets[action]
        text_fields = {n: v for n, v in fields.items() if v is not None}
        file_fields = [n for n, v in fields.items() if v is None]
        for client in prober.clients_for(action):
            # A visitor's POST to a staff form is turned away before any field is read: bodies only.
            each_field = client is not prober.anonymous or not action.startswith("/admin/")
            prober.post_fields(client, action, text_fields, file_fields, each_field=each_field)


@pytest.fixture
def site_rows(reco_catalog, django_user_model, settings):  # noqa: F811 - the imported fixture
    """The recommender's test catalog plus a post with real pictures (the admin's forms open them), an
    id of each admin model's newest row, small pages (so pagination links show) and a small body
    limit (so one field can pass it)."""
    from tests import factories as f

    settings.CATALOG_PAGE_SIZE = 2
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    post = f.make_post(
        n_items=2, category=f.make_category("Scarves", parent=reco_catalog["tops"]), styles=[f.make_style()]
    )
    # garments on the looks (and on the post with a real picture, for the admin's garment actions), so the
    # pages' garment links and the API's garment parameters are probed too
    for look in [*reco_catalog["looks"], post]:
        store_garments(reco_catalog["version"], look, {1: ("tops", (0.2, 0.1, 0.8, 0.5))})
    f.make_tag("Summer")
    # The forms posted as staff may delete this user, never the one logged in.
    django_user_model.objects.create_user("bystander", password="not-used-0123")
    real_ids = {}
    for model in admin.site._registry:
        row = model._default_manager.order_by("-pk").first()
        if model is django_user_model:
            row = model._default_manager.get(username="bystander")
        if row is not None:
            real_ids[model] = str(row.pk)
    return real_ids


@pytest.mark.slow
# About 7,300 requests a run: on two cores shared with other runs, close to the suite's 600 s default
# (docs/reliability.md, "Hostile input").
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG", "production"])
def test_no_endpoint_answers_hostile_input_with_a_server_error(site_rows, admin_user, settings, debug, monkeypatch):
    from django.template import Template
    from django.test.utils import _TestState

    # The test client's template instrumentation copies every context of every render (a third of the
    # time here); this probe reads statuses and bodies only, so templates render as in production.
    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)
    settings.DEBUG = debug
    operations = api_operations()
    prober = Prober(staff_user=admin_user, real_ids=site_rows)

    probe_everything(prober)

    tally = prober.tally
    print(
        f"\nhostile input, DEBUG={debug}: {len(url_routes())} routes, {len(operations)} API operations, "
        f"{len(tally.parameters)} (path, parameter) pairs, {len(tally.forms)} POST targets; "
        f"{tally.requests} requests {dict(tally.kinds)}; statuses {dict(sorted(tally.statuses.items()))}"
    )
    # The routes, the schema and the forms were all found (a probe that found nothing would pass).
    assert len(operations) >= 5 and tally.requests > 5000
    assert tally.statuses[400] > 100 and tally.statuses[422] > 100
    assert not tally.failures, f"{len(tally.failures)} bad answers:\n" + "\n".join(tally.failures[:300])
