"""The web side of the serving measurements: gunicorn on 127.0.0.1 and a minimal HTTP client."""

from __future__ import annotations

import http.client
import socket
import sys
import time
import uuid

from bench import env
from bench.context import Context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ctx: Context, workers: int = 2, threads: int = 8) -> tuple[env.Process, int]:
    """gunicorn (gthread) serving the project; returns once it answers an API request."""
    port = _free_port()
    server = env.Process(
        "gunicorn",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            "gthread",
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ctx.root,
        log_dir=ctx.work_dir / "logs",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"gunicorn exited:\n{server.tail()}")
        try:
            status, _ = request(port, "GET", "/api/items?page_size=1")
            if status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 60s:\n{server.tail()}")


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """One request to the local server (on ``conn`` if given, else on a connection of its own)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Host": "localhost", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def multipart(fields: dict[str, str], file_field: str, file_name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and one file; returns (body, Content-Type)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    content_type = "image/png" if file_name.endswith(".png") else "image/jpeg"
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{file_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
