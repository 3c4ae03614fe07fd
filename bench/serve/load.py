"""Concurrent GET load on the local server: requests per second, latencies and errors per target."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field

from bench.serve.web import request
from bench.stats import percentile


@dataclass
class LoadResult:
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def completed(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def summary(self, names: list[str] | None = None) -> dict:
        names = names or list(self.latencies)
        values = [x for n in names for x in self.latencies.get(n, [])]
        errors = sum(self.errors.get(n, 0) for n in names)
        return {
            "requests": len(values),
            "errors": errors,
            "rps": len(values) / self.seconds,
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
        }


def load(port: int, targets: list[tuple[str, str]], *, clients: int, seconds: float) -> LoadResult:
    """``clients`` threads, each on its own keep-alive connection, cycling over (name, path) for ``seconds``."""
    result = LoadResult(seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        latencies, errors = _cycle(port, targets, index, deadline)
        with lock:
            for k, v in latencies.items():
                result.latencies.setdefault(k, []).extend(v)
            for k, v in errors.items():
                result.errors[k] = result.errors.get(k, 0) + v

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    return result


def _cycle(
    port: int, targets: list[tuple[str, str]], start: int, deadline: float
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """One client's requests from ``targets[start]`` on until ``deadline``: latencies (ms) and errors by name."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = start
    latencies: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    while time.monotonic() < deadline:
        name, path = targets[n % len(targets)]
        n += 1
        started = time.perf_counter()
        try:
            status, _ = request(port, "GET", path, conn=conn)
            ok = status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        if ok:
            latencies.setdefault(name, []).append(elapsed)
        else:
            errors[name] = errors.get(name, 0) + 1
    conn.close()
    return latencies, errors
