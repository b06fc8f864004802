"""Start-up secret checks: the API and the workers refuse to start without a usable key.

A missing or too short secret stops the process with one line naming the setting and
how to provide it, never the value; ``/readyz`` reports it too.
"""

from __future__ import annotations

import os
import sys

import pytest
from fastapi.testclient import TestClient

import secops.embedded
from secops.config import (
    API_SECRETS,
    OPTIONAL_KEYS,
    SECRET_FIELDS,
    SECRET_MIN_LENGTH,
    WORKER_SECRETS,
    Settings,
    embedded_secrets_dir,
    get_settings,
)
from secops.embedded import ensure_generated_secrets, write_private
from secops.errors import ConfigurationError
from tests.processes import Proc, wait_for

GOOD = "k" * 64
SHORT = "short-secret-value-do-not-leak"  # 30 characters
assert len(SHORT) < SECRET_MIN_LENGTH


@pytest.fixture
def no_secrets(monkeypatch, tmp_path):
    """No secret from any source: no env, no *_FILE, an empty embedded secrets dir."""
    for name in SECRET_FIELDS:
        monkeypatch.delenv(f"SECOPS_{name.upper()}", raising=False)
        monkeypatch.delenv(f"SECOPS_{name.upper()}_FILE", raising=False)
    monkeypatch.setenv("SECOPS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _refusal(*names: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as err:
        Settings().require_secrets(*names)
    return err.value


def test_missing_secret_names_the_setting_and_how_to_provide_it(no_secrets):
    err = _refusal("storage_key")
    assert err.message.startswith("secret storage_key is not set")
    for source in ("Docker secret storage_key", "/run/secrets/storage_key",
                   "SECOPS_STORAGE_KEY_FILE", "SECOPS_STORAGE_KEY"):
        assert source in err.message
    assert err.details == {"secrets": {"storage_key": "not set"}}


def test_too_short_secret_is_refused_without_its_value(no_secrets):
    no_secrets.setenv("SECOPS_STORAGE_KEY", SHORT)
    err = _refusal("storage_key")
    assert f"storage_key is shorter than {SECRET_MIN_LENGTH} characters" in err.message
    assert err.details == {"secrets": {"storage_key": "too short"}}
    assert SHORT not in str(err) and SHORT not in repr(err) and SHORT not in str(err.details)
    assert str(len(SHORT)) not in err.message  # not even its length


def test_the_same_minimum_applies_to_every_key(no_secrets):
    for name in (*API_SECRETS, "dlp_hmac"):
        no_secrets.setenv(f"SECOPS_{name.upper()}", "x" * (SECRET_MIN_LENGTH - 1))
    err = _refusal(*API_SECRETS, "dlp_hmac")
    assert err.details["secrets"] == {name: "too short" for name in (*API_SECRETS, "dlp_hmac")}
    for name in (*API_SECRETS, "dlp_hmac"):
        no_secrets.setenv(f"SECOPS_{name.upper()}", "x" * SECRET_MIN_LENGTH)
    Settings().require_secrets(*API_SECRETS, "dlp_hmac")  # exactly the minimum is enough


def test_optional_dlp_hmac_is_checked_only_when_set(no_secrets):
    for name in API_SECRETS:
        no_secrets.setenv(f"SECOPS_{name.upper()}", GOOD)
    Settings().require_secrets(*API_SECRETS, optional=OPTIONAL_KEYS)
    no_secrets.setenv("SECOPS_DLP_HMAC", SHORT)
    with pytest.raises(ConfigurationError) as err:
        Settings().require_secrets(*API_SECRETS, optional=OPTIONAL_KEYS)
    assert err.value.details == {"secrets": {"dlp_hmac": "too short"}}
    assert SHORT not in err.value.message


def test_several_problems_are_one_line(no_secrets):
    no_secrets.setenv("SECOPS_AUDIT_HMAC", SHORT)
    err = _refusal(*API_SECRETS)
    assert "\n" not in err.message
    assert err.details["secrets"] == {"api_key_hmac": "not set", "audit_hmac": "too short",
                                      "storage_key": "not set"}
    assert SHORT not in err.message


def test_present_via_env_passes(no_secrets):
    for name in API_SECRETS:
        no_secrets.setenv(f"SECOPS_{name.upper()}", GOOD)
    Settings().require_secrets(*API_SECRETS, *WORKER_SECRETS)


def test_present_via_file_passes_and_a_short_file_does_not(no_secrets, tmp_path):
    key_file = tmp_path / "storage_key"
    key_file.write_text(GOOD + "\n")
    no_secrets.setenv("SECOPS_STORAGE_KEY_FILE", str(key_file))
    Settings().require_secrets("storage_key")
    key_file.write_text(SHORT + "\n")
    err = _refusal("storage_key")
    assert err.details == {"secrets": {"storage_key": "too short"}} and SHORT not in err.message


def test_a_file_setting_naming_no_file_says_which(no_secrets, tmp_path):
    no_secrets.setenv("SECOPS_STORAGE_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="storage_key: SECOPS_STORAGE_KEY_FILE names a "
                                                 "missing file"):
        get_settings()


def test_secrets_generated_by_secops_up_pass(no_secrets):
    """The embedded mode: ``secops up`` generates the secrets before it starts anything."""
    ensure_generated_secrets(embedded_secrets_dir())
    Settings().require_secrets(*API_SECRETS, *WORKER_SECRETS)


def test_a_generated_secret_is_on_disk_before_its_name_is(tmp_path, monkeypatch):
    """The file's bytes are flushed before the rename and the directory after it, so a
    crash cannot leave a storage key that exists by name but is empty."""
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = secops.embedded.os.fsync, secops.embedded.os.replace

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        events.append(("fsync", (target, os.fstat(fd).st_size if os.path.isfile(target) else None)))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(secops.embedded.os, "fsync", fsync)
    monkeypatch.setattr(secops.embedded.os, "replace", replace)
    write_private(tmp_path / "secrets" / "storage_key", "k" * 43)
    (kind1, (written, size)), (kind2, name), (kind3, (directory, _)) = events
    assert (kind1, kind2, kind3) == ("fsync", "replace", "fsync")
    assert written.endswith(".tmp") and size == 44 and name == "storage_key"
    assert directory == str(tmp_path / "secrets")
    assert (tmp_path / "secrets" / "storage_key").read_text() == "k" * 43 + "\n"


def test_webhook_secret_is_required_by_workers_only_with_a_webhook(no_secrets):
    from tasks.app import _require_secrets

    for name in API_SECRETS:
        no_secrets.setenv(f"SECOPS_{name.upper()}", GOOD)
    _require_secrets()
    no_secrets.setenv("SECOPS_ALERT_WEBHOOK_URL", "https://hooks.example/secops")
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        _require_secrets()
    assert "secret alert_webhook_secret is not set" in str(exit_.value.code)
    no_secrets.setenv("SECOPS_ALERT_WEBHOOK_SECRET", "receiver-chosen")  # presence only
    get_settings.cache_clear()
    _require_secrets()


def test_unknown_secret_name_is_a_programming_error(no_secrets):
    with pytest.raises(ValueError, match="unknown secret"):
        Settings().require_secrets("storage_kee")


def test_create_app_refuses_without_storage_key(sqlite_env, monkeypatch):
    from secops.api.app import create_app

    monkeypatch.delenv("SECOPS_STORAGE_KEY")
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        create_app()
    message = str(exit_.value.code)
    assert message.startswith("secops api: refusing to start: secret storage_key is not set")
    assert "SECOPS_STORAGE_KEY_FILE" in message and "\n" not in message


def test_readyz_reports_an_unusable_secret(sqlite_env, monkeypatch):
    from secops.api.app import create_app
    from tests.factories import auth, make_key

    monkeypatch.setenv("SECOPS_READYZ_CACHE_SECONDS", "0")  # each call checks afresh
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False,
                        headers=auth(make_key("auditor")))  # details for a valid key only
    assert client.get("/readyz").json()["checks"]["secrets"] == "ok"
    monkeypatch.setenv("SECOPS_STORAGE_KEY", SHORT)
    get_settings.cache_clear()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["checks"]["secrets"] == {"storage_key": "too short"}
    assert SHORT not in resp.text
    monkeypatch.delenv("SECOPS_STORAGE_KEY")
    get_settings.cache_clear()
    assert client.get("/readyz").json()["checks"]["secrets"] == {"storage_key": "not set"}


def _refused_process(argv: list[str], env: dict[str, str], log, component: str) -> str:
    proc = Proc(argv, env, log)
    try:
        wait_for(lambda: proc.p.poll() is not None, 60, f"the {component} to exit")
    finally:
        proc.stop()
    assert proc.p.returncode != 0
    output = proc.output()
    refusals = [line for line in output.splitlines() if "refusing to start" in line]
    assert len(refusals) == 1, output[-3000:]
    assert "Traceback" not in output
    return refusals[0]


@pytest.fixture(params=["missing", "too short"])
def without_storage_key(request, sqlite_env, monkeypatch) -> dict[str, str]:
    """The platform's settings with no usable storage key, and none generated to fall back on."""
    env = {k: v for k, v in sqlite_env.items() if k != "SECOPS_STORAGE_KEY"}
    monkeypatch.delenv("SECOPS_STORAGE_KEY")  # Proc starts from os.environ
    if request.param == "too short":
        env["SECOPS_STORAGE_KEY"] = SHORT
    assert not (embedded_secrets_dir() / "storage_key").exists()
    return env


def _expected(line: str, component: str) -> None:
    assert line.startswith(f"secops {component}: refusing to start: secret storage_key ")
    assert "SECOPS_STORAGE_KEY_FILE" in line and "Docker secret storage_key" in line
    assert SHORT not in line


@pytest.mark.integration
def test_api_process_refuses_to_start_without_storage_key(without_storage_key, tmp_path):
    line = _refused_process(
        [sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
         "--host", "127.0.0.1", "--port", "0", "--no-server-header"],
        without_storage_key, tmp_path / "api.log", "API")
    _expected(line, "api")


@pytest.mark.integration
def test_worker_process_refuses_to_start_without_storage_key(without_storage_key, tmp_path):
    line = _refused_process(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
         "--concurrency", "1", "--hostname", "nokey@%h", "--without-mingle", "--without-gossip"],
        without_storage_key, tmp_path / "worker.log", "worker")
    _expected(line, "worker")
    assert "ready." not in (tmp_path / "worker.log").read_text()
