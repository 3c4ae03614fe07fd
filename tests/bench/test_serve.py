"""The serving part's HTTP pieces on a real local server, and its table rows: no Django, no TensorFlow."""

from __future__ import annotations

import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.serve import pages, throughput, uploads
from bench.serve.load import LoadResult, load
from bench.serve.web import multipart, request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn answers the bench's clients

    def do_GET(self):  # noqa: N802 - the stdlib's name
        status = 200 if self.path == "/ok" else 500
        body = self.path.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_multipart_body_carries_the_fields_and_the_file():
    body, content_type = multipart({"direction": "snapshot_to_items"}, "image", "look.jpg", b"\xff\xd8jpeg")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, photo = list(message.iter_parts())
    assert fields.get_param("name", header="content-disposition") == "direction"
    assert fields.get_content() == "snapshot_to_items"
    assert photo.get_filename() == "look.jpg"
    assert photo.get_content_type() == "image/jpeg"
    assert photo.get_content() == b"\xff\xd8jpeg"
    assert multipart({}, "image", "item.png", b"png")[0].count(b"Content-Type: image/png") == 1


def test_request_answers_status_and_body(port):
    assert request(port, "GET", "/ok") == (200, b"/ok")
    assert request(port, "GET", "/missing") == (500, b"/missing")


def test_load_counts_latencies_and_errors_per_target(port):
    result = load(port, [("ok", "/ok"), ("bad", "/bad")], clients=2, seconds=0.5)
    assert set(result.latencies) == {"ok"} and set(result.errors) == {"bad"}
    ok, bad = len(result.latencies["ok"]), result.errors["bad"]
    assert ok > 0 and abs(ok - bad) <= 2  # each client alternates the two targets
    assert result.completed == ok
    summary = result.summary(["ok", "bad"])
    assert summary["requests"] == ok and summary["errors"] == bad
    assert summary["rps"] == pytest.approx(ok / 0.5)
    assert 0 < summary["p50"] <= summary["p95"]


def test_load_summary_of_a_target_that_never_answered():
    result = LoadResult(seconds=2.0, latencies={"page": [10.0, 20.0, 30.0]}, errors={"down": 3})
    assert result.summary(["down"]) == {"requests": 0, "errors": 3, "rps": 0.0, "p50": None, "p95": None}
    assert result.summary(["page"]) == {"requests": 3, "errors": 0, "rps": 1.5, "p50": 20.0, "p95": 29.0}


def test_table_rows_of_the_serving_sections():
    rates = {"n": 8, "library_single": 27.1, "library_batched": 46.9, "worker": 8.0}
    assert throughput._row("item", rates) == ["items", 8, "27.1", "46.9", "x1.73", "8.0", "x0.17"]
    assert throughput._row("snapshot", {"n": 2, "library_single": 12.0, "library_batched": 9.5})[-2:] == ["n/a"] * 2

    upload = {"p50": 162.0, "p95": 310.0, "results": 6, "by_id_p50": 20.0, "by_id_p95": 25.5}
    row = uploads._row("snapshot_to_items", upload, single_rate=12.5)
    assert row == ["snapshot to items", "162", "310", 6, "20.0", "25.5", "80", "x8.1", "missed"]
    assert uploads._row("item_to_snapshots", {**upload, "p95": 299.0}, None)[-3:] == ["n/a", "x8.1", "met"]

    summary = {"rps": 120.0, "p50": 4.0, "p95": 9.25, "errors": 1}
    assert pages._row("· item page", summary, "") == ["· item page", "120.0", "4.0", "9.2", 1, ""]
