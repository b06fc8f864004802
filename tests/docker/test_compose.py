"""The production topology: non-root containers, every credential a Docker secret.

There is no Docker engine on the build machines, so the files are checked as data; when
the compose plugin is present, ``docker compose config`` must accept the file too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SECRET_WORDS = re.compile(r"(?i)pass|secret|token|key|hmac|credential|://[^/]*:[^/]*@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_all_roles_present(compose):
    assert {"api", "worker", "beat", "flower", "redis", "postgres"} <= set(compose["services"])


def test_every_service_runs_as_non_root(compose):
    for name, svc in compose["services"].items():
        user = str(svc.get("user", ""))
        assert user and not user.startswith(("0", "root")), f"{name} runs as root"


def test_no_credential_in_environment_values(compose):
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        for key, value in items:
            if key.endswith("_FILE"):
                assert str(value).startswith("/run/secrets/"), (name, key)
                continue
            assert not SECRET_WORDS.search(f"{key}={value}"), f"{name}: {key} looks like a credential"


def test_credentials_are_docker_secrets(compose):
    declared = compose["secrets"]
    assert all("file" in spec for spec in declared.values())
    used = {s for svc in compose["services"].values() for s in svc.get("secrets", [])}
    assert used == set(declared)
    app_secrets = set(compose["services"]["api"]["secrets"])
    assert {"database_url", "redis_url", "api_key_hmac", "audit_hmac", "flower_password"} <= app_secrets
    assert "redis_password" in compose["services"]["redis"]["secrets"]
    assert "requirepass" in " ".join(compose["services"]["redis"]["command"])
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password")


def test_published_ports_are_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} publicly"


def test_dockerfile_is_multistage_non_root_with_healthcheck():
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and not users[-1].startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert "--no-server-header" in text


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")  # Debian's package; validates without an engine
    return [legacy] if legacy else None


def test_compose_config_validates():
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed; checked as data")
    secrets_dir = COMPOSE.parent / "secrets"
    made = not secrets_dir.exists()
    if made:
        secrets_dir.mkdir()
        for spec in yaml.safe_load(COMPOSE.read_text())["secrets"].values():
            (COMPOSE.parent / spec["file"]).write_text("x")
    try:
        result = subprocess.run([*command, "-f", str(COMPOSE), "config", "-q"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    finally:
        if made:
            shutil.rmtree(secrets_dir)


RABBITMQ_OVERRIDE = COMPOSE.parent / "compose.rabbitmq.yml"


def test_rabbitmq_override_gives_every_celery_role_the_broker_secret():
    override = yaml.safe_load(RABBITMQ_OVERRIDE.read_text())
    services = override["services"]
    for role in ("api", "worker", "worker-heavy", "beat", "flower"):
        assert services[role]["secrets"] == ["broker_url"], role
        assert services[role]["depends_on"]["rabbitmq"] == {"condition": "service_healthy"}
        assert "SECOPS_BROKER_URL" not in services[role]["environment"]  # a secret, not a value
    rabbit = services["rabbitmq"]
    assert rabbit["secrets"] == ["rabbitmq_password"] and str(rabbit["user"]) == "999:999"
    assert all(str(p).startswith("127.0.0.1:") for p in rabbit.get("ports", []))
    assert set(override["secrets"]) == {"broker_url", "rabbitmq_password"}
    assert not SECRET_WORDS.search(yaml.safe_dump(rabbit.get("environment") or {}))


def test_compose_config_validates_with_the_rabbitmq_override():
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed; checked as data")
    secrets_dir = COMPOSE.parent / "secrets"
    made = not secrets_dir.exists()
    if made:
        secrets_dir.mkdir()
        for path in (COMPOSE, RABBITMQ_OVERRIDE):
            for spec in yaml.safe_load(path.read_text())["secrets"].values():
                (COMPOSE.parent / spec["file"]).write_text("x")
    try:
        result = subprocess.run([*command, "-f", str(COMPOSE), "-f", str(RABBITMQ_OVERRIDE),
                                 "config"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        merged = yaml.safe_load(result.stdout)["services"]
        assert {s["source"] if isinstance(s, dict) else s
                for s in merged["worker"]["secrets"]} >= {"broker_url", "redis_url", "database_url"}
    finally:
        if made:
            shutil.rmtree(secrets_dir)
