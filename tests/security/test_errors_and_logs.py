"""Errors say nothing of internals; the log has the traceback; no secret reaches any log."""

from __future__ import annotations

import io
import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import AuditEntry, Job
from secops.db.session import session_scope
from secops.logs import configure_logging, redact
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    yield stream
    configure_logging("INFO")


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_500_has_only_request_id_and_log_has_traceback(sqlite_env, log_stream):
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("db password=hunter2 at /internal/path")

    resp = TestClient(app, raise_server_exceptions=False).get("/boom")
    body = assert_problem(resp, 500)
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    assert "ValueError" not in resp.text and "internal" not in body["detail"].replace(
        "internal error", "")
    logged = [r for r in records(log_stream) if r.get("request_id") == body["request_id"]]
    assert logged and "Traceback" in logged[0]["exc"] and "ValueError" in logged[0]["exc"]
    assert "hunter2" not in log_stream.getvalue()


def test_oversized_and_malformed_bodies_change_nothing(client):
    key = make_key()
    big = b'{"kind": "system.ping", "params": {"message": "' + b"x" * 2_000_000 + b'"}}'
    assert_problem(client.post("/v1/jobs", content=big,
                               headers={**auth(key), "content-type": "application/json"}), 413)
    assert_problem(client.post("/v1/jobs", content=b'{"kind": ',
                               headers={**auth(key), "content-type": "application/json"}), 400)
    assert_problem(client.post("/v1/schedules", content=b"[1,2",
                               headers={**auth(key), "content-type": "application/json"}), 400)
    assert_problem(client.post("/v1/keys", json={"name": 5, "role": []}, headers=auth(key)), 422)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_no_secret_in_any_log(sqlite_env, log_stream):
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()
    created = client.post("/v1/keys", json={"name": "leak-check", "role": "analyst"},
                          headers=auth(admin)).json()
    rotated = client.post(f"/v1/keys/{created['id']}/rotate", headers=auth(admin)).json()
    wrong = admin[:-4] + "AAAA"
    for token in (wrong, "secops_zzzzzzzz_" + "Q" * 43, "not-even-a-key"):
        client.get("/v1/jobs", headers=auth(token))
    log = logging.getLogger("secops.test")
    github = "ghp_" + "aZ3kQ9xW2mN7pL4vB8cR1tY6uJ0eH5sD2fG9"  # pragma: allowlist secret
    aws = "AKIA" + "Q7WZ2MX4PL9KD3VN"
    log.warning("client sent Authorization: Bearer %s", admin)
    url = "postgresql://u:pgpass123@db/x"  # pragma: allowlist secret
    log.warning("config dump %s", {"url": url, "token": github,
                                   "aws": aws})
    try:
        raise RuntimeError(f"failed with key {rotated['key']}")
    except RuntimeError:
        log.exception("boom")
    settings = get_settings()
    text = log_stream.getvalue()
    assert text  # something was logged (events, the lines above)
    for secret in (admin, wrong, created["key"], rotated["key"], github, aws, "pgpass123",
                   settings.secret("api_key_hmac").get_secret_value(),
                   settings.secret("audit_hmac").get_secret_value()):
        assert secret not in text, secret[:12]
    assert any(r.get("message") == "security event" for r in records(log_stream))


def test_redaction_of_dlp_secret_shapes_but_not_ordinary_text():
    jwt = ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."  # pragma: allowlist secret
           "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")  # pragma: allowlist secret
    assert jwt not in redact(f"session {jwt} expired")
    assert redact("job 42 finished in 3.1 s on queue scan") == "job 42 finished in 3.1 s on queue scan"
