"""The client address behind per-IP limits: no forwarded header believed unless it comes
from a trusted proxy (with the API started exactly as ``secops up`` starts it), IPv6
clients counted by /64, and key management in a bucket of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from secops.api.app import create_app
from secops.api.security import limit_subject
from secops.cli.up import api_command
from secops.config import get_settings
from secops.db.models import AuditEntry
from secops.db.session import session_scope
from secops.embedded import free_port
from tests.factories import auth, make_key
from tests.processes import Proc, wait_for
from tests.security.conftest import assert_problem

BAD_KEY = "secops_aaaaaaaa_" + "x" * 43


def _start_up_api(env: dict[str, str], log: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(api_command(sys.executable, "127.0.0.1", port, 1), env, log)

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.p.poll() is not None

    wait_for(ready, 30, "API ready")
    assert proc.p.poll() is None, proc.output()[-3000:]
    return proc, f"http://127.0.0.1:{port}"


def _statuses(url: str, forwarded: list[str]) -> list[int]:
    with httpx.Client(timeout=10) as http:
        return [http.get(f"{url}/v1/jobs", headers={**auth(BAD_KEY), "X-Forwarded-For": xff})
                .status_code for xff in forwarded]


@pytest.mark.integration
def test_rotating_forwarded_for_does_not_escape_the_limit(sqlite_env, tmp_path):
    env = dict(sqlite_env, SECOPS_RATE_LIMIT_AUTH="5/60")
    admin = make_key()
    proc, url = _start_up_api(env, tmp_path / "api.log")
    try:
        submitted = httpx.post(f"{url}/v1/jobs", json={"kind": "system.ping"},
                               headers={**auth(admin), "X-Forwarded-For": "6.6.6.6"}, timeout=10)
        statuses = _statuses(url, [f"198.51.100.{i}" for i in range(12)])
    finally:
        proc.stop()
    # the first 5 failures spend the loopback client's budget; the rotating header is ignored
    assert statuses == [401] * 5 + [429] * 7
    # and the audit log names the real peer, not the forged address
    assert submitted.status_code == 202
    with session_scope() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "jobs.submit")).one()
    assert entry.client_ip == "127.0.0.1"


@pytest.mark.integration
def test_trusted_proxy_ipv6_clients_are_counted_by_their_64(sqlite_env, tmp_path):
    env = dict(sqlite_env, SECOPS_RATE_LIMIT_AUTH="3/60",
               SECOPS_TRUSTED_PROXIES='["127.0.0.1"]')
    proc, url = _start_up_api(env, tmp_path / "api.log")
    try:
        same_64 = _statuses(url, [f"2001:db8:1:2::{i:x}" for i in range(1, 6)])
        other_64s = _statuses(url, [f"2001:db8:1:{i:x}::1" for i in range(10, 15)])
    finally:
        proc.stop()
    assert same_64 == [401] * 3 + [429] * 2
    assert other_64s == [401] * 5  # each a different client behind the trusted proxy


def test_limit_subject():
    assert limit_subject("2001:db8:0:1::5") == "2001:db8:0:1::/64"
    assert limit_subject("2001:db8:0:1:ffff::9") == "2001:db8:0:1::/64"
    assert limit_subject("::ffff:192.0.2.7") == "192.0.2.7"
    assert limit_subject("192.0.2.7") == "192.0.2.7"


def test_key_management_does_not_spend_the_failed_login_budget(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_RATE_LIMIT_AUTH", "3/60")
    monkeypatch.setenv("SECOPS_RATE_LIMIT_KEYS", "6/60")
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()
    for _ in range(6):
        assert client.get("/v1/keys", headers=auth(admin)).status_code == 200
    # every client of this address can still use the rest of the API...
    assert client.get("/v1/jobs", headers=auth(admin)).status_code == 200
    # ...while key management has its own limit
    resp = client.get("/v1/keys", headers=auth(admin))
    assert_problem(resp, 429)
    assert resp.headers["ratelimit-policy"].startswith('"keys-ip";q=6;w=60')
