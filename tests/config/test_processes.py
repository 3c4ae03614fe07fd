"""The Procfile of `make run` (config.processes): every queue consumed, supervisord's configuration restarting
each program as a group, and the log listener's prefixed lines."""

from __future__ import annotations

import configparser
import io
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import psutil

from config import processes
from workers import registry

ROOT = Path(__file__).resolve().parents[2]


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
    assert [p.name for p in _stack()] == ["web", "queries", "worker", "training", "beat"]


def test_training_has_a_worker_of_its_own_so_it_never_holds_up_embedding():
    queues = {p.name: p.argv[p.argv.index("-Q") + 1].split(",") for p in _stack() if "worker" in p.argv}
    assert queues["training"] == [registry.TRAINING]
    assert registry.MODEL_BOOTSTRAP.queue == registry.TRAIN_VERSION.queue == registry.TRAINING
    assert registry.EMBEDDING in queues["worker"] and registry.TRAINING not in queues["worker"]
    training = next(p for p in _stack() if p.name == "training").argv
    assert training[training.index("-n") + 1] == "training@%h"
    assert training[training.index("-c") + 1] == "1"


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


def test_the_log_listener_prefixes_whole_lines_by_program():
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


def _events(log: str, name: str) -> list[tuple[str, float]]:
    """("spawned" | "exited", time) of one program, in supervisord's log order."""
    from datetime import datetime

    found = re.findall(rf"^(\S+ \S+) \w+ (spawned|exited): '?{name}'? ", log, flags=re.MULTILINE)
    return [(what, datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()) for stamp, what in found]


def _spawn_times(log: str, name: str) -> list[float]:
    return [at for what, at in _events(log, name) if what == "spawned"]


def _waits_after_exits(log: str, name: str) -> list[float]:
    """Seconds from each logged exit of the program to its next spawn."""
    events = _events(log, name)
    return [
        later - at
        for (what, at), (next_what, later) in zip(events, events[1:], strict=False)
        if what == "exited" and next_what == "spawned"
    ]


def test_supervisord_with_this_configuration_restarts_a_dying_program_after_growing_waits(tmp_path):
    """The real manager with the generated configuration: a program that dies at once is started again
    after 1 s, 2 s, 3 s, ... (supervisord's BACKOFF), each exit logged; a stop leaves no process behind."""
    # startsecs above supervisord's 1 s tick, so that the quick exit is seen as a failed start.
    flaky = processes.Process("flaky", (sys.executable, "-c", "import sys; sys.exit(3)"), startsecs=3)
    steady = processes.Process("steady", (sys.executable, "-c", "import time; time.sleep(600)"), startsecs=1)
    (tmp_path / "run").mkdir()
    (tmp_path / "log").mkdir()
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        processes.supervisor_config([flaky, steady], run_dir=tmp_path / "run", log_dir=tmp_path / "log", cwd=ROOT)
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log_file = tmp_path / "log" / "supervisord.log"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_spawn_times(_read(log_file), "flaky")) < 4:
            time.sleep(0.2)
        children = psutil.Process(supervisor.pid).children(recursive=True)
    finally:
        supervisor.terminate()
        supervisor.wait(30)
    log = _read(log_file)
    waits = _waits_after_exits(log, "flaky")
    assert len(waits) >= 3, log
    # The n-th failed start waits n seconds (supervisord acts on a 1 s tick, so up to one more).
    for n, wait in enumerate(waits[:3], start=1):
        assert n - 0.1 <= wait <= n + 1.2, f"wait {n} was {wait:.2f} s: {waits}"
    assert "exited: flaky (exit status 3; not expected)" in log
    assert "success: steady entered RUNNING state" in log
    assert len(_spawn_times(log, "steady")) == 1  # the healthy one was left alone
    time.sleep(0.5)
    assert [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def test_the_log_listener_colours_names_only_when_asked(tmp_path):
    plain = processes.supervisor_config(_stack(), run_dir=tmp_path, log_dir=tmp_path, cwd=tmp_path)
    coloured = processes.supervisor_config(_stack(), run_dir=tmp_path, log_dir=tmp_path, cwd=tmp_path, colour=True)
    assert "log-listener --colour" in coloured and "--colour" not in plain
    stderr = io.BytesIO()
    processes.log_listener(stdin=io.BytesIO(_event("web", b"hi\n")), stdout=io.StringIO(), stderr=stderr, colour=True)
    assert stderr.getvalue().decode() == f"{processes.COLOURS[0]}     web |{processes.RESET} hi\n"
