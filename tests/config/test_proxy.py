"""The production web tier without Docker: gunicorn started as docker-compose.yml starts it, behind Debian's
nginx running the repository's own proxy configuration (deploy/nginx/lookbook.conf.template), rendered as
the official image renders it.

Slow request bodies (a few bytes a second) hold every sync gunicorn worker when they reach gunicorn; behind
the proxy they do not, and other requests are still answered.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "lookbook.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SLOW_CLIENTS = 6  # twice gunicorn's 3 workers
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(template: str, values: dict[str, str]) -> str:
    """What the official image's envsubst does with the variables set: each ${NAME} replaced, nginx's own
    $variables left alone (a ${NAME} without a value is an error here)."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda match: values[match.group(1)], template)


def _size_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit.lower()]


def _server_body_limit(conf: str) -> int:
    """client_max_body_size at the server level (the first one, before any location)."""
    server = conf[conf.index("server {") : conf.index("location")]
    return _size_bytes(re.search(r"client_max_body_size\s+(\w+);", server).group(1))


def _wait_answering(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        if _answer_seconds(url, timeout=2) is not None:
            return
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered:\n{log.read_text(errors='replace')[-3000:]}")


def _answer_seconds(url: str, timeout: float) -> float | None:
    """Seconds until any HTTP answer (a 503 counts), or None when none came within ``timeout``."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        exc.read()
    except (TimeoutError, urllib.error.URLError, ConnectionError):
        return None
    return time.monotonic() - started


@dataclass
class WebTier:
    gunicorn_port: int
    nginx_port: int
    media_root: Path
    conf: str

    def url(self, path: str, *, direct: bool = False) -> str:
        return f"http://127.0.0.1:{self.gunicorn_port if direct else self.nginx_port}{path}"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def web_tier(tmp_path) -> Iterator[WebTier]:
    if not Path(NGINX).exists():
        pytest.fail(f"nginx is not installed at {NGINX}: `apt-get install nginx` (.ci/run does)")
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gunicorn_port, nginx_port = _free_port(), _free_port()

    # gunicorn exactly as docker-compose.yml's web service runs it, on a local port, DEBUG off.
    command = list(compose["services"]["web"]["command"])
    assert command[0] == "gunicorn"
    command[0] = str(Path(sys.executable).parent / "gunicorn")
    command[command.index("--bind") + 1] = f"127.0.0.1:{gunicorn_port}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "LOOKBOOK_USE_TEST_DB": "1",
        "LOOKBOOK_NO_DEVSERVICES": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
    }
    gunicorn_log = tmp_path / "gunicorn.log"
    with open(gunicorn_log, "wb") as log:
        gunicorn = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

    # nginx with the repository's server configuration, inside a main file like the official image's.
    media_root = tmp_path / "media"
    media_root.mkdir()
    conf = render(
        TEMPLATE.read_text(),
        {
            "LOOKBOOK_UPSTREAM": f"127.0.0.1:{gunicorn_port}",
            "NGINX_PORT": str(nginx_port),
            "LOOKBOOK_MEDIA_ROOT": str(media_root),
        },
    )
    (tmp_path / "lookbook.conf").write_text(conf)
    user = "user root root;" if os.geteuid() == 0 else ""  # its workers must reach the temporary folders here
    (tmp_path / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log info;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp_path}/nginx-access.log;
    client_body_temp_path {tmp_path}/client_body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    sendfile on;
    include {tmp_path}/lookbook.conf;
}}
"""
    )
    nginx_log = tmp_path / "nginx-error.log"
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    tier = WebTier(gunicorn_port, nginx_port, media_root, conf)
    try:
        _wait_answering(tier.url("/healthz", direct=True), 60, gunicorn, gunicorn_log)
        _wait_answering(tier.url("/healthz"), 20, nginx, nginx_log)
        yield tier
    finally:
        _stop(nginx)
        _stop(gunicorn)


class SlowBodies:
    """Connections that POST a multipart upload to /api/query and send its body a few bytes a second."""

    def __init__(self, port: int, count: int):
        self.stop = threading.Event()
        self.socks = []
        head = (
            b"POST /api/query HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=slowslowslow\r\nContent-Length: 1000000\r\n\r\n"
            b'--slowslowslow\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n"
        )
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head)
            self.socks.append(sock)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(1.0):
            for sock in self.socks:
                try:
                    sock.sendall(b"\xff\xd8\xff")  # 3 bytes a second
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.socks:
            sock.close()


def test_slow_bodies_hold_bare_gunicorn_but_not_the_site_behind_the_proxy(web_tier):
    baseline = [_answer_seconds(web_tier.url("/healthz"), timeout=5) for _ in range(3)]
    assert None not in baseline, baseline

    slow = SlowBodies(web_tier.nginx_port, SLOW_CLIENTS)
    try:
        time.sleep(2)  # nginx has accepted them all and waits for their bodies
        behind_proxy = [_answer_seconds(web_tier.url("/healthz"), timeout=5) for _ in range(5)]
    finally:
        slow.close()
    assert None not in behind_proxy, f"requests through nginx went unanswered: {behind_proxy}"
    assert max(behind_proxy) < 2.0, behind_proxy

    # The same clients straight at gunicorn: its 3 sync workers sit reading their bodies.
    slow = SlowBodies(web_tier.gunicorn_port, SLOW_CLIENTS)
    try:
        time.sleep(2)
        direct = _answer_seconds(web_tier.url("/healthz", direct=True), timeout=3)
    finally:
        slow.close()
    assert direct is None, f"gunicorn answered in {direct:.2f} s while slow bodies held its workers"
    print(  # figures for docs/reliability.md (pytest -s)
        f"\n{SLOW_CLIENTS} slow bodies: /healthz through nginx answered in "
        f"{', '.join(f'{s * 1000:.0f}' for s in behind_proxy)} ms (before them: "
        f"{', '.join(f'{s * 1000:.0f}' for s in baseline)} ms); straight at gunicorn: no answer within 3 s"
    )


def test_the_proxy_body_limit_is_the_upload_limit_plus_framing(web_tier):
    limit = _server_body_limit(web_tier.conf)
    upload = settings.CATALOG_MAX_UPLOAD_BYTES
    assert upload < limit <= upload + 2 * 2**20, "client_max_body_size must follow CATALOG_MAX_UPLOAD_BYTES"

    def post(size: int) -> tuple[int, bytes]:
        request = urllib.request.Request(
            web_tier.url("/api/query"),
            data=b"\0" * size,
            headers={"Content-Type": "multipart/form-data; boundary=b"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    status, body = post(limit + 1)
    assert status == 413  # refused by nginx: gunicorn never reads it
    assert json.loads(body)["message"].startswith("The request body is larger than"), body  # the API's format
    status, _body = post(upload + 64 * 1024)
    assert status != 413, "a body of one upload at the limit must reach the application"


def test_the_proxy_serves_the_media_folder(web_tier):
    (web_tier.media_root / "looks").mkdir()
    (web_tier.media_root / "looks" / "a.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with urllib.request.urlopen(web_tier.url("/media/looks/a.jpg"), timeout=5) as response:
        assert response.read() == b"\xff\xd8\xff not really a jpeg"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
