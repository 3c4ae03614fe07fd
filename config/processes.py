"""The processes of `make run` and the supervisord configuration that keeps them running.

`make run` (config.run) hands these processes to supervisord (PyPI's ``supervisor``). Why it:
it restarts a process that dies (``autorestart``), waits longer before each new try of one that
keeps dying at start (BACKOFF: 1 s, 2 s, 3 s, ... up to ``startretries``), logs each exit and
spawn, stops whole process groups (a Celery worker and its pool), is pure Python with no
dependencies, and is maintained (4.3.0, 2025). honcho runs a Procfile but restarts nothing;
circus restarts but brings ZeroMQ and tornado along for features this stack does not use.

:func:`processes` is the Procfile of the stack, queue names from :mod:`workers.registry`;
:func:`supervisor_config` turns it into supervisord's INI text. Each program's output goes to
``var/log/<name>.log`` (rotated) and, through the event listener at the end of this module
(``python -m config.processes log-listener``), to the terminal, each line prefixed by its name.
"""

from __future__ import annotations

import configparser
import io
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from workers import registry

# A crash loop gives up (FATAL, logged) after this many quick failures; the waits grow 1 s, 2 s, ...
START_RETRIES = 20
COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]
RESET = "\033[0m"


@dataclass(frozen=True)
class Process:
    """One program: ``startsecs`` is how long it must stay up to count as started (a quicker exit
    is a failed start, retried after a growing wait); ``stopwaitsecs`` how long a stop waits for it
    before SIGKILL (a worker finishing its task)."""

    name: str
    argv: tuple[str, ...]
    startsecs: int = 5
    stopwaitsecs: int = 15


def processes(*, host: str, port: int, schedule: Path, python: str = sys.executable) -> list[Process]:
    """The stack of `make run`: the web server, a worker for shoppers' queries, a worker for training
    (the model bootstrap too), a worker for everything else (embedding, re-indexing, the periodic checks),
    and beat. Training has its own worker so that a run of hours never holds up embedding."""
    celery = (python, "-m", "celery", "-A", "workers")
    others = ",".join(q for q in registry.QUEUES if q not in (registry.QUERIES, registry.TRAINING))
    return [
        Process("web", (python, "manage.py", "runserver", f"{host}:{port}", "--noreload")),
        Process(
            "queries",
            (*celery, "worker", "-Q", registry.QUERIES, "-n", "queries@%h", "-c", "1", "-l", "INFO"),
            startsecs=10,
        ),
        Process(
            "worker",
            (*celery, "worker", "-Q", others, "-n", "main@%h", "-c", "1", "-l", "INFO"),
            startsecs=10,
        ),
        Process(
            "training",
            (*celery, "worker", "-Q", registry.TRAINING, "-n", "training@%h", "-c", "1", "-l", "INFO"),
            startsecs=10,
        ),
        Process("beat", (*celery, "beat", "-l", "INFO", "--schedule", str(schedule))),
    ]


def _command(argv: tuple[str, ...] | list[str]) -> str:
    # supervisord splits the command with shlex and expands %(name)s, so a literal % is written %%.
    return shlex.join(argv).replace("%", "%%")


def supervisor_config(
    procs: list[Process], *, run_dir: Path, log_dir: Path, cwd: Path, colour: bool = False, python: str = sys.executable
) -> str:
    """supervisord's configuration for ``procs``: in the foreground, restarting what dies; ``colour``:
    the listener colours each program's name (for a terminal)."""
    config = configparser.RawConfigParser()
    config["supervisord"] = {
        "nodaemon": "true",
        "logfile": str(log_dir / "supervisord.log"),  # also echoed to supervisord's stdout
        "logfile_maxbytes": "10MB",
        "logfile_backups": "3",
        "pidfile": str(run_dir / "supervisord.pid"),
        "childlogdir": str(log_dir),
        "directory": str(cwd),
        "loglevel": "info",
    }
    for proc in procs:
        config[f"program:{proc.name}"] = {
            "command": _command(proc.argv),
            "directory": str(cwd),
            "autostart": "true",
            "autorestart": "true",
            "startsecs": str(proc.startsecs),
            "startretries": str(START_RETRIES),
            "stopsignal": "TERM",
            "stopwaitsecs": str(proc.stopwaitsecs),
            # The signal and the final SIGKILL go to the whole group: a worker's pool children too.
            "stopasgroup": "true",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": str(log_dir / f"{proc.name}.log"),
            "stdout_logfile_maxbytes": "10MB",
            "stdout_logfile_backups": "3",
            "stdout_events_enabled": "true",
        }
    config["eventlistener:logs"] = {
        "command": _command([python, "-m", "config.processes", "log-listener", *(["--colour"] if colour else [])]),
        "directory": str(cwd),
        "events": "PROCESS_LOG",
        "buffer_size": "10000",
        "autorestart": "true",
        # The listener's stdout is supervisord's protocol; the prefixed lines go to its stderr,
        # which supervisord writes to its own.
        "stderr_logfile": "/dev/stderr",
        "stderr_logfile_maxbytes": "0",
    }
    text = io.StringIO()
    config.write(text)
    return text.getvalue()


# --- the event listener: each program's output, line by line, prefixed by its name ------------------------


def _prefix(name: str, colours: dict[str, str] | None) -> str:
    if colours is None:
        return f"{name:>8} | "
    colour = colours.setdefault(name, COLOURS[len(colours) % len(COLOURS)])
    return f"{colour}{name:>8} |{RESET} "


def log_listener(stdin=None, stdout=None, stderr=None, *, colour: bool = False) -> None:
    """supervisord's PROCESS_LOG events to ``stderr``, whole lines only, each prefixed by its program."""
    from supervisor.childutils import get_headers, listener

    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr.buffer
    partial: dict[str, bytes] = {}
    colours: dict[str, str] | None = {} if colour else None
    while True:
        listener.ready(stdout)
        line = stdin.readline()
        if not line:
            return  # supervisord is gone
        headers = get_headers(line.decode())
        payload = stdin.read(int(headers["len"]))
        head, _, data = payload.partition(b"\n")
        name = get_headers(head.decode()).get("processname", "?")
        lines = (partial.pop(name, b"") + data).split(b"\n")
        partial[name] = lines.pop()  # an unfinished line waits for its end
        prefix = _prefix(name, colours).encode()
        stderr.write(b"".join(prefix + text + b"\n" for text in lines))
        stderr.flush()
        listener.ok(stdout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["log-listener"] and set(sys.argv[2:]) <= {"--colour"}:
        log_listener(colour="--colour" in sys.argv[2:])
    else:
        sys.exit("usage: python -m config.processes log-listener [--colour]")
