"""Settings and the secret reader: source order, fail-fast errors, and no leak anywhere."""

from __future__ import annotations

import logging
from io import StringIO

import httpx
import pytest

from secops.config import Settings, get_settings, read_secret
from secops.errors import ConfigurationError
from secops.logs import JsonFormatter, RedactingFilter, configure_logging, redact
from tests.factories import auth, make_key
from tests.processes import start_api, start_worker, wait_for

SECRET = "s3cr3t-value-that-must-never-leak-42"


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    for var in ("SECOPS_API_KEY_HMAC", "SECOPS_API_KEY_HMAC_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SECOPS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_secret_sources_in_order(monkeypatch, tmp_path):
    docker = tmp_path / "run-secrets"
    docker.mkdir()
    monkeypatch.setenv("SECOPS_API_KEY_HMAC", "from-env")
    assert read_secret("api_key_hmac", secrets_dir=docker).get_secret_value() == "from-env"
    file = tmp_path / "hmac.txt"
    file.write_text("from-file\n")
    monkeypatch.setenv("SECOPS_API_KEY_HMAC_FILE", str(file))
    assert read_secret("api_key_hmac", secrets_dir=docker).get_secret_value() == "from-file"
    (docker / "api_key_hmac").write_text("from-docker")
    assert read_secret("api_key_hmac", secrets_dir=docker).get_secret_value() == "from-docker"


def test_settings_take_secrets_in_the_readers_order_and_redact_them(monkeypatch, tmp_path):
    """pydantic would read SECOPS_<NAME> itself; the secret reader's order and its
    registration with the log redaction filter must win."""
    from_env = "env-only-hmac-value-that-is-long-enough-1"
    monkeypatch.setenv("SECOPS_API_KEY_HMAC", from_env)
    assert Settings().api_key_hmac.get_secret_value() == from_env
    assert from_env not in redact(f"leaked {from_env} here")
    file = tmp_path / "hmac.txt"
    file.write_text("file-hmac-value-that-is-long-enough-000002\n")
    monkeypatch.setenv("SECOPS_API_KEY_HMAC_FILE", str(file))
    assert Settings().api_key_hmac.get_secret_value() == "file-hmac-value-that-is-long-enough-000002"
    given = "passed-in-directly-value-that-is-long-3"
    monkeypatch.delenv("SECOPS_API_KEY_HMAC_FILE")
    monkeypatch.delenv("SECOPS_API_KEY_HMAC")
    assert Settings(api_key_hmac=given).api_key_hmac.get_secret_value() == given
    assert given not in redact(given)


def test_embedded_secrets_dir_is_the_last_source(monkeypatch, tmp_path):
    generated = tmp_path / "data" / "secrets"
    generated.mkdir(parents=True)
    (generated / "api_key_hmac").write_text("generated")
    assert read_secret("api_key_hmac").get_secret_value() == "generated"
    assert read_secret("api_key_hmac", embedded=False) is None
    monkeypatch.setenv("SECOPS_API_KEY_HMAC", "explicit")
    assert read_secret("api_key_hmac").get_secret_value() == "explicit"


def test_missing_or_empty_secret_fails_clearly_without_value(monkeypatch, tmp_path):
    with pytest.raises(ConfigurationError, match="api_key_hmac is not set"):
        Settings().secret("api_key_hmac")
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("SECOPS_API_KEY_HMAC_FILE", str(empty))
    with pytest.raises(ConfigurationError, match="empty"):
        read_secret("api_key_hmac")
    monkeypatch.setenv("SECOPS_API_KEY_HMAC_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="missing file"):
        read_secret("api_key_hmac")


def test_invalid_setting_names_the_variable_not_the_value(monkeypatch):
    monkeypatch.setenv("SECOPS_API_PORT", "not-a-port-" + SECRET)
    with pytest.raises(ConfigurationError) as err:
        get_settings()
    assert "SECOPS_API_PORT" in str(err.value) and SECRET not in str(err.value)


def test_secrets_never_in_repr_or_censored_settings(monkeypatch):
    monkeypatch.setenv("SECOPS_API_KEY_HMAC", SECRET)
    monkeypatch.setenv("SECOPS_REDIS_URL", f"redis://:{SECRET}@localhost:6379/0")
    monkeypatch.setenv("SECOPS_DATABASE_URL", f"postgresql://u:{SECRET}@db/secops")
    settings = get_settings()
    for text in (repr(settings), str(settings), str(settings.censored()),
                 str(settings.model_dump())):
        assert SECRET not in text
    assert settings.secret("api_key_hmac").get_secret_value() == SECRET


def test_redaction_filter_removes_registered_secrets_and_credentials(monkeypatch):
    monkeypatch.setenv("SECOPS_API_KEY_HMAC", SECRET)
    read_secret("api_key_hmac")  # registers the value with the log filter
    stream = StringIO()
    logger = logging.getLogger("secops.test.redaction")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("value %s", SECRET)
        logger.warning("Authorization: Bearer secops_abcdefgh_" + "x" * 43)
        logger.warning("url postgresql://user:hunter2pass@db:5432/x password=topsecret1")
        try:
            raise ValueError(f"boom {SECRET}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for leaked in (SECRET, "secops_abcdefgh_", "hunter2pass", "topsecret1"):
        assert leaked not in out
    assert out.count("[REDACTED]") >= 5
    assert redact("nothing to hide") == "nothing to hide"


@pytest.mark.integration
def test_no_secret_in_logs_of_a_real_run(sqlite_env, tmp_path, redis_server):
    """Run an API and a worker at DEBUG with every secret set, do real work (including an
    authentication failure and a failing job), then read every log line they wrote."""
    env = dict(sqlite_env, SECOPS_LOG_LEVEL="DEBUG", SECOPS_API_KEY_HMAC=SECRET)
    worker = start_worker(env, tmp_path / "worker.log")
    api, url = start_api(env, tmp_path / "api.log")
    try:
        import os

        os.environ["SECOPS_API_KEY_HMAC"] = SECRET
        get_settings.cache_clear()
        key = make_key()
        for params in ({"message": "hi"}, {"fail": True}):
            job = httpx.post(f"{url}/v1/jobs", json={"kind": "system.ping", "params": params},
                             headers=auth(key)).json()
            wait_for(lambda j=job: httpx.get(f"{url}/v1/jobs/{j['id']}", headers=auth(key))
                     .json()["status"] in ("succeeded", "failed"), 30, "job done")
        assert httpx.get(f"{url}/v1/jobs", headers=auth(key[:-1] + "Z")).status_code == 401
    finally:
        api.stop()
        worker.stop()
    logs = worker.output() + api.output()
    assert "job succeeded" in logs  # the logs are real and at DEBUG
    redis_password = redis_server.password
    for value in (SECRET, redis_password, key, key.split("_", 2)[2]):
        assert value not in logs


def test_configure_logging_writes_json_lines():
    stream = StringIO()
    configure_logging("INFO", stream)
    try:
        logging.getLogger("secops.x").info("hello", extra={"job_id": "j1"})
    finally:
        configure_logging("WARNING")
    import json

    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "hello" and line["job_id"] == "j1" and line["level"] == "INFO"
