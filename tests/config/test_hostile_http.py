"""The hostile-input probe of tests/test_hostile_input.py over real HTTP, against gunicorn started as
docker-compose.yml starts it, with the production settings (DEBUG off, WhiteNoise and the hashed
static files of collectstatic, CSRF enforced). The same routes, parameters, values and bodies; the
same rules (no 5xx; an API operation's error is its JSON), except for a request gunicorn itself
refuses before Django sees it (a request line over its 4,094 bytes), which is counted apart.

``pytest tests/config/test_hostile_http.py -s`` prints the status counts (docs/reliability.md).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import string
import subprocess
import sys
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.config.test_proxy import web_tier  # noqa: F401 - gunicorn and nginx as docker-compose.yml runs them
from tests.recommender.conftest import catalog_rows, reco_catalog, rng  # noqa: F401 - the recommender's test catalog
from tests.test_hostile_input import Prober, probe_everything, site_rows  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@dataclass
class WireResponse:
    status_code: int
    headers: http.client.HTTPMessage
    content: bytes

    def get(self, name: str, default=None):
        return self.headers.get(name, default)

    def json(self):
        return json.loads(self.content)


class HttpClient:
    """What the probe uses of Django's test client (``get``, ``generic``, ``force_login``), over HTTP.

    Keeps the cookies it is sent, except the CSRF cookie: it keeps its own, so that the token of every
    form it was served stays valid (a login rotates the server's), and sends it as the header of each
    POST too. Redirects are answers, not followed.
    """

    def __init__(self, base_url: str, *, password: str) -> None:
        self.netloc = urlsplit(base_url).netloc
        self.cookies = SimpleCookie()
        self.cookies["csrftoken"] = "".join(secrets.choice(string.ascii_letters) for _ in range(32))
        self.password = password

    def force_login(self, user) -> None:
        """Log in through the admin's login form (the server signs sessions with its own secret key)."""
        self.cookies.pop("sessionid", None)
        form = urlencode({"username": user.get_username(), "password": self.password}).encode()
        response = self.generic("POST", "/admin/login/", form, "application/x-www-form-urlencoded")
        assert response.status_code == 302 and "sessionid" in self.cookies, response.content[:500]

    def get(self, url: str, follow: bool = False) -> WireResponse:
        return self.generic("GET", url)

    def generic(self, method: str, url: str, data: bytes = b"", content_type: str = "") -> WireResponse:
        headers = {}
        if method == "POST":
            headers.update({"X-CSRFToken": self.cookies["csrftoken"].value, "Content-Type": content_type})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={m.value}" for k, m in self.cookies.items())
        connection = http.client.HTTPConnection(self.netloc, timeout=60)
        try:
            connection.request(method, url, body=data if method == "POST" else None, headers=headers)
            response = connection.getresponse()
            content = response.read()
        finally:
            connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            sent = SimpleCookie(header)
            sent.pop("csrftoken", None)
            self.cookies.update(sent)
        return WireResponse(response.status, response.headers, content)


@pytest.fixture
def production_static(tmp_path_factory, monkeypatch):
    """collectstatic with the production settings into a folder the gunicorn of ``web_tier`` serves from,
    and the probe's small pages and body limit, set before ``web_tier`` starts it."""
    static_root = tmp_path_factory.mktemp("static")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOOKBOOK_NO_DEVSERVICES": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": str(static_root),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    monkeypatch.setenv("STATIC_ROOT", str(static_root))
    monkeypatch.setenv("CATALOG_PAGE_SIZE", "2")
    monkeypatch.setenv("DATA_UPLOAD_MAX_MEMORY_SIZE", "2048")
    return static_root


@pytest.mark.timeout(1200)  # as tests/test_hostile_input.py's: about 7,300 requests
def test_the_production_server_answers_hostile_input_without_a_server_error(
    production_static,
    web_tier,  # noqa: F811 - the imported fixture
    site_rows,  # noqa: F811
    admin_user,
):
    base_url = web_tier.url("", direct=True)
    prober = Prober(
        staff_user=admin_user,
        real_ids=site_rows,
        client=lambda: HttpClient(base_url, password="password"),  # pytest-django's admin_user
        django_header="Content-Security-Policy",
    )

    probe_everything(prober)

    tally = prober.tally
    print(
        f"\nhostile input over HTTP (gunicorn, production settings): {len(tally.parameters)} (path, parameter) "
        f"pairs, {len(tally.forms)} POST targets; {tally.requests} requests {dict(tally.kinds)}; "
        f"statuses {dict(sorted(tally.statuses.items()))}"
    )
    assert tally.requests > 3000 and tally.statuses[200] > 500  # the pages were found and rendered
    assert tally.statuses[400] > 100 and tally.statuses[422] > 100
    assert not tally.failures, f"{len(tally.failures)} bad answers:\n" + "\n".join(tally.failures[:300])
