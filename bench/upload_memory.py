"""Web memory under concurrent 40-megapixel uploads: ``python -m bench.upload_memory``.

Starts gunicorn (one gthread process, 8 threads, as threaded as ``make run``'s runserver) on a
scratch database of the embedded PostgreSQL, twice: once with the upload bounds off
(``RECOMMENDER_UPLOAD_MAX_SIDE=0``, ``RECOMMENDER_UPLOAD_DECODE_PIXELS=0``: every upload decoded at full
size, all at once, as before) and once with the settings' defaults. Each time it sends 8 concurrent
``POST /api/query`` of the same picture (a 129 KB solid-colour 6000 x 6600 PNG, then a 40-megapixel
JPEG), sampling the web process's RSS every 10 ms, and prints RSS before, peak and growth, the wall
time and the answers. The scratch database has no active model, so each upload is validated and
decoded in full, then answered 503 "no active model" before any task is sent: the figures are the
decode path's, the part that grows with the picture.
Pillow's 64 MB allocation blocks (catalog.apps) apply to both runs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "bench_upload_memory"
CONFIGS = {
    "bounds off (before)": {"RECOMMENDER_UPLOAD_MAX_SIDE": "0", "RECOMMENDER_UPLOAD_DECODE_PIXELS": "0"},
    "defaults (after)": {},
}


def pictures(folder: Path) -> dict[str, Path]:
    """The issue's solid-colour PNG and a 40-megapixel photo-like JPEG (smooth, so under the byte limit)."""
    import numpy as np
    from PIL import Image

    png = folder / "solid-6000x6600.png"
    Image.new("RGB", (6000, 6600), (180, 40, 90)).save(png, optimize=True)
    height, width = 5470, 7310  # 39.99 megapixels
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    rgb = np.stack([np.broadcast_to(y, (height, width)), np.broadcast_to(x, (height, width)), (y + x) / 2], axis=-1)
    jpeg = folder / "gradient-7310x5470.jpg"
    Image.fromarray(rgb.astype(np.uint8)).save(jpeg, quality=90)
    return {png.name: png, jpeg.name: jpeg}


def scratch_database() -> str:
    """A migrated scratch database on the embedded server; returns its URL."""
    import psycopg

    from config import devservices

    devservices.ensure_started(database=True, broker=True)
    host = devservices.postgres_host()
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = f"postgres://postgres@/{DATABASE}?host={host}"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=600)
    return url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _multipart(path: Path) -> tuple[bytes, str]:
    boundary = "benchboundary7d1f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="direction"\r\n\r\nsnapshot_to_items\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _post(port: int, body: bytes, content_type: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/api/query", body=body, headers={"Content-Type": content_type, "Host": "localhost"})
        response = conn.getresponse()
        payload = response.read()
        try:
            message = json.loads(payload).get("message", "")
        except ValueError:
            message = payload[:80].decode(errors="replace")
        return response.status, message
    finally:
        conn.close()


class Server:
    """gunicorn with one gthread worker process (the process whose memory is measured)."""

    def __init__(self, env: dict[str, str], threads: int) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{self.port}",
             "-w", "1", "-k", "gthread", "--threads", str(threads), "--timeout", "300", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/items?page_size=1", headers={"Host": "localhost"})
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError("gunicorn did not answer within 90 s")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        self.worker_pid = int(children[0])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(30)


def measure(port: int, pid: int, picture: Path, concurrency: int) -> dict:
    body, content_type = _multipart(picture)
    answers: list[tuple[int, str]] = []
    peak = before = _rss_bytes(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    senders = [
        threading.Thread(target=lambda: answers.append(_post(port, body, content_type))) for _ in range(concurrency)
    ]
    started = time.monotonic()
    sampler.start()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    seconds = time.monotonic() - started
    done.set()
    sampler.join()
    return {
        "picture": picture.name,
        "bytes": picture.stat().st_size,
        "rss_before_mb": before / 2**20,
        "rss_peak_mb": peak / 2**20,
        "growth_mb": (peak - before) / 2**20,
        "seconds": seconds,
        "answers": Counter(f"{status} {message}" for status, message in answers),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    url = scratch_database()
    rows = []
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as folder:
        files = pictures(Path(folder))
        small = Path(folder) / "warm-up.jpg"
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (640, 480), (10, 20, 30)).save(buffer, format="JPEG")
        small.write_bytes(buffer.getvalue())
        for label, overrides in CONFIGS.items():
            env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1", "LOG_LEVEL": "WARNING", **overrides}
            for picture in files.values():
                server = Server(env, threads=args.concurrency)  # a fresh process per case: nothing carried over
                try:
                    _post(server.port, *_multipart(small))  # imports and first-request work before the baseline
                    rows.append({"config": label, **measure(server.port, server.worker_pid, picture, args.concurrency)})
                finally:
                    server.stop()
    print(f"{args.concurrency} concurrent POST /api/query, one gunicorn gthread process, RSS sampled every 10 ms")
    print(
        f"{'config':<22} {'picture':<26} {'KB':>6} {'RSS before':>11} {'peak':>8} {'growth':>8} {'wall s':>7}  answers"
    )
    for r in rows:
        answers = "; ".join(f"{n} x {a}" for a, n in sorted(r["answers"].items()))
        print(
            f"{r['config']:<22} {r['picture']:<26} {r['bytes'] / 1024:>6.0f} {r['rss_before_mb']:>8.0f} MB"
            f" {r['rss_peak_mb']:>5.0f} MB {r['growth_mb']:>5.0f} MB {r['seconds']:>7.1f}  {answers}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
