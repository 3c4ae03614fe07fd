"""PostgreSQL unreachable: every page and API endpoint answers a quick 503 with Retry-After, and the site
answers again by itself once the database is back (config.outages, connect_timeout in the settings)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import psycopg
import pytest
from django.db import DataError, OperationalError, connection, connections, transaction

from config.outages import database_unreachable
from tests import factories as f

pytestmark = pytest.mark.django_db(transaction=True)

# The bound in the issue is 2 s for a refused connection (docs/reliability.md measures it); this leaves
# room for a slow machine. A server that never answers costs the connect_timeout (2 s) on top.
QUICK_S = 5.0


@pytest.fixture
def pages(catalog_rows):
    """One URL of each kind the site serves (GET), with the rows they show."""
    version = catalog_rows.version(dim=4)
    snapshot = catalog_rows.snapshots(1)[0]
    item = catalog_rows.items(1)[0]
    catalog_rows.snapshot_vectors(version, snapshot, [[1, 0, 0, 0]])
    catalog_rows.item_vectors(version, [(item, [1, 1, 0, 0])])
    return {
        "/": False,
        "/items/": False,
        f"/snapshots/{snapshot.pk}/": False,
        f"/items/{item.pk}/": False,
        "/api/items": True,
        "/api/snapshots": True,
        f"/api/snapshots/{snapshot.pk}/items": True,
    }


@pytest.fixture
def catalog_rows(db):
    from tests.recommender.conftest import Catalog

    return Catalog()


@contextmanager
def database_at(**params):
    """The web side's connection settings changed within the block (the next query connects with them)."""
    conn = connections["default"]
    saved = dict(conn.settings_dict)
    conn.close()
    conn.settings_dict.update(params)
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict.clear()
        conn.settings_dict.update(saved)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _uploads(client):
    return {
        "/api/query": lambda: client.post("/api/query", {"direction": "snapshot_to_items", "image": f.make_upload()}),
        "/search/": lambda: client.post("/search/", {"direction": "item_to_snapshots", "image": f.make_upload()}),
    }


def _assert_503(response, *, api: bool, seconds: float, url: str) -> None:
    assert response.status_code == 503, (url, response.status_code, response.content[:200])
    assert response["Retry-After"].isdigit(), url
    assert seconds < QUICK_S, f"{url} took {seconds:.1f}s"
    if api:
        assert response.json()["detail"] == "database unavailable", url
    else:
        assert response["Content-Type"].startswith("text/html"), url
        assert "Please try again" in response.content.decode(), url


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.fixture
def mounted_at_shop(settings):
    """The site mounted under /shop/, as a WSGI server behind a path prefix passes SCRIPT_NAME (the test
    client sets no script prefix itself, so it is set here as Django's WSGI handler sets it)."""
    from django.urls import get_script_prefix, set_script_prefix

    saved = get_script_prefix()
    settings.FORCE_SCRIPT_NAME = "/shop"
    set_script_prefix("/shop/")
    yield
    set_script_prefix(saved)


def test_the_api_is_told_by_its_url_root_under_a_path_prefix(client, pages, mounted_at_shop):
    # The 503 and the NUL guard's 400 find the API by the URLconf's root, the prefix included.
    with database_at(HOST="127.0.0.1", PORT=str(_closed_port())):
        for url, api in pages.items():
            response = client.get(url)
            assert response.status_code == 503, url
            assert response["Content-Type"].startswith("application/json" if api else "text/html"), url
    nul = client.get("/api/items?style=%00")
    assert nul.status_code == 400 and nul["Content-Type"].startswith("application/json")
    assert client.get("/items/?style=%00")["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_every_page_is_a_quick_503_while_nothing_listens_on_the_database_port(client, pages, settings, debug):
    settings.DEBUG = debug  # django-ninja answers errors itself in DEBUG: the API must still say 503
    with database_at(HOST="127.0.0.1", PORT=str(_closed_port())):
        for url, api in pages.items():
            response, seconds = _timed(lambda url=url: client.get(url))
            _assert_503(response, api=api, seconds=seconds, url=url)
        for url, call in _uploads(client).items():
            response, seconds = _timed(call)
            _assert_503(response, api=url.startswith("/api/"), seconds=seconds, url=url)


def test_a_database_that_accepts_but_never_answers_is_a_503_after_the_connect_timeout(client, pages, settings):
    assert connection.settings_dict["OPTIONS"]["connect_timeout"] == 2
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshake; no PostgreSQL ever answers
        with database_at(HOST="127.0.0.1", PORT=str(silent.getsockname()[1])):
            response, seconds = _timed(lambda: client.get("/api/items"))
    _assert_503(response, api=True, seconds=seconds, url="/api/items")
    assert seconds >= 1.5  # it waited for the timeout: the server did accept the connection


def test_pages_are_503_while_postgresql_refuses_connections_and_answer_again_after(live_server, pages):
    """Through a real server thread, so each request opens and closes its connection as in production."""

    def get(url: str):
        request = urllib.request.Request(live_server.url + url)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers, response.read(), time.monotonic() - started
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read(), time.monotonic() - started

    for url in pages:
        assert get(url)[0] == 200, url
    name = connection.settings_dict["NAME"]
    _allow_connections(name, False)
    try:
        for url, api in pages.items():
            status, headers, body, seconds = get(url)
            assert (status, headers["Retry-After"]) == (503, "30"), (url, status, body[:200])
            assert seconds < QUICK_S, f"{url} took {seconds:.1f}s"
            assert (b"database unavailable" if api else b"Please try again") in body, url
    finally:
        _allow_connections(name, True)
        connection.close()  # this thread's own session was ended too; the test's teardown reconnects
    for url in pages:  # the same server, nothing restarted: the next request connects again
        assert get(url)[0] == 200, url


def _allow_connections(database: str, allow: bool) -> None:
    """ALLOW_CONNECTIONS from the maintenance database; when refusing, end the sessions already open
    (this process's included), so it is an outage and not just a refusal of new connections."""
    params = connection.settings_dict
    with psycopg.connect(host=params["HOST"], user=params["USER"], dbname="postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}')
        if not allow:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [database])


def test_only_connection_failures_count_as_the_database_being_unreachable():
    with pytest.raises(OperationalError) as timed_out, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 10")
        cursor.execute("SELECT pg_sleep(1)")
    with pytest.raises(DataError) as bad_maths, connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    with database_at(HOST="127.0.0.1", PORT=str(_closed_port())):
        with pytest.raises(OperationalError) as refused:
            connection.ensure_connection()

    assert database_unreachable(refused.value)
    assert not database_unreachable(timed_out.value)  # a slow statement is not an outage
    assert not database_unreachable(bad_maths.value)
    assert not database_unreachable(ValueError("unrelated"))
