"""docker-compose.yml cannot run here (no Docker engine), so it is checked by reading."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_env_names() -> set[str]:
    modules = [*sorted((ROOT / "config" / "settings").glob("*.py")), ROOT / "config" / "env.py"]
    source = "".join(path.read_text() for path in [*modules, ROOT / "config" / "devservices.py"])
    names = set(re.findall(r'env\.(?:get|get_bool|get_int|get_float|get_list|require)\("([A-Z0-9_]+)"', source))
    return names | {"DJANGO_SETTINGS_MODULE", "LOOKBOOK_NO_DEVSERVICES", "LOOKBOOK_VAR_DIR"}


def test_services_and_healthchecks():
    services = _compose()["services"]
    assert {"db", "redis", "web", "worker", "worker-queries", "worker-training", "beat", "migrate"} <= set(services)
    assert services["db"]["image"].startswith("pgvector/pgvector:")
    assert "shared_buffers=${POSTGRES_SHARED_BUFFERS:-1GB}" in services["db"]["command"]  # indexes in memory
    for name in ("db", "redis", "web", "worker", "worker-queries", "worker-training"):
        assert "healthcheck" in services[name], name
    assert "gunicorn" in services["web"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "workers", "beat"]


def test_workers_consume_exactly_the_registry_queues_each_once():
    from workers import registry

    services = _compose()["services"]
    queues: dict[str, list[str]] = {}
    for name in ("worker", "worker-queries", "worker-training"):
        command = services[name]["command"]
        queues[name] = command[command.index("-Q") + 1].split(",")
    assert sorted(q for consumed in queues.values() for q in consumed) == sorted(registry.QUEUES)
    assert queues["worker-queries"] == [registry.QUERIES]
    assert queues["worker-training"] == [registry.TRAINING]  # a training run never holds up embedding


def test_gunicorn_is_reached_only_through_the_buffering_proxy():
    services = _compose()["services"]
    proxy, web = services["proxy"], services["web"]
    assert proxy["image"].startswith("nginx:")  # the official image
    assert "./deploy/nginx/lookbook.conf.template:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    assert (ROOT / "deploy" / "nginx" / "lookbook.conf.template").is_file()
    template = (ROOT / "deploy" / "nginx" / "lookbook.conf.template").read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    assert variables == set(proxy["environment"]), "every ${NAME} of the template is set for envsubst"
    assert proxy["environment"]["LOOKBOOK_UPSTREAM"] == "web:8000"
    assert "--bind" in web["command"] and web["command"][web["command"].index("--bind") + 1].endswith(":8000")
    assert "ports" not in web, "gunicorn must not be published: slow clients would reach it directly"
    assert proxy["ports"] == ["8000:8000"]


def test_volumes_keep_database_and_media():
    compose = _compose()
    assert {"pgdata", "media", "models", "redisdata"} <= set(compose["volumes"])
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]
    assert "media:/data/media" in compose["services"]["web"]["volumes"]
    assert "media:/data/media" in compose["services"]["worker"]["volumes"]
    assert "media:/data/media" in compose["services"]["worker-training"]["volumes"]


def test_app_environment_uses_settings_the_code_reads():
    known = _settings_env_names()
    for name in ("web", "worker", "worker-queries", "worker-training", "beat", "migrate"):
        environment = _compose()["services"][name]["environment"]
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    env_example = (ROOT / ".env.example").read_text()
    # docker compose itself reads the ${NAME} interpolations of docker-compose.yml
    known |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    for line in env_example.splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            assert match.group(1) in known, f".env.example documents {match.group(1)}, which nothing reads"
