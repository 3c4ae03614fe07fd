"""The Procfile of `make run` (config.processes): every queue consumed, supervisord's configuration restarting
each program as a group, and the log listener's prefixed lines."""

from __future__ import annotations

import configparser
import io
import shlex
from pathlib import Path

from config import processes
from workers import registry


def _stack() -> list[processes.Process]:
    return processes.processes(host="127.0.0.1", port=8123, schedule=Path("/v/beat"), python="/py")


def _parsed(tmp_path: Path) -> configparser.ConfigParser:
    text = processes.supervisor_config(_stack(), run_dir=tmp_path / "run", log_dir=tmp_path / "log", cwd=tmp_path)
    parser = configparser.ConfigParser()  # supervisord's own reading: %(name)s expanded, %% a literal %
    parser.read_string(text)
    return parser


def test_the_workers_consume_every_queue_of_the_registry_each_once():
    consumed: list[str] = []
    for proc in _stack():
        if "worker" in proc.argv:
            consumed += proc.argv[proc.argv.index("-Q") + 1].split(",")
    assert sorted(consumed) == sorted(registry.QUEUES)
    assert [p.name for p in _stack()] == ["web", "queries", "worker", "beat"]


def test_every_program_restarts_when_it_dies_and_stops_as_a_group(tmp_path):
    config = _parsed(tmp_path)
    programs = [section.removeprefix("program:") for section in config.sections() if section.startswith("program:")]
    assert programs == [p.name for p in _stack()]
    for name in programs:
        section = config[f"program:{name}"]
        assert section["autorestart"] == "true"
        assert int(section["startretries"]) >= 10  # a crash loop backs off 1 s, 2 s, ... before giving up
        assert section["stopasgroup"] == section["killasgroup"] == "true"
        assert section["stdout_logfile"] == str(tmp_path / "log" / f"{name}.log")
    assert config["supervisord"]["nodaemon"] == "true"


def test_commands_read_back_as_the_argv_with_a_literal_percent(tmp_path):
    config = _parsed(tmp_path)
    for proc in _stack():
        assert shlex.split(config[f"program:{proc.name}"]["command"]) == list(proc.argv)
    assert "queries@%h" in config["program:queries"]["command"]


def _event(name: str, data: bytes) -> bytes:
    payload = f"processname:{name} groupname:{name} pid:1 channel:stdout\n".encode() + data
    return (
        f"ver:3.0 server:supervisor serial:1 pool:logs eventname:PROCESS_LOG_STDOUT len:{len(payload)}\n".encode()
        + payload
    )


def test_the_log_listener_prefixes_whole_lines_by_program(monkeypatch):
    monkeypatch.delenv("LOOKBOOK_COLOUR", raising=False)
    events = _event("web", b"GET / 200\nhalf a ") + _event("beat", "tick \u00e9\n".encode()) + _event("web", b"line\n")
    stdout, stderr = io.StringIO(), io.BytesIO()
    processes.log_listener(stdin=io.BytesIO(events), stdout=stdout, stderr=stderr)
    assert stderr.getvalue().decode().splitlines() == [
        "     web | GET / 200",
        "    beat | tick \u00e9",
        "     web | half a line",
    ]
    assert stdout.getvalue().count("READY\n") == 4  # ready for each event, and for the next one
    assert stdout.getvalue().count("RESULT 2\nOK") == 3
