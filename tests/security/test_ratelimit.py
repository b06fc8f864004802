"""Rate limiting at the API: headers, 429, client IP, fail closed, and across processes."""

from __future__ import annotations

import threading

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.requests import Request

from secops.api.app import create_app
from secops.api.security import client_ip
from secops.config import get_settings
from secops.db.models import SecurityEvent
from secops.db.session import session_scope
from secops.services import keys as key_service
from secops.services.redisconn import get_redis
from tests.factories import auth, key_id_of, make_key
from tests.processes import start_api
from tests.security.conftest import assert_problem, assert_security_headers


def _limit(monkeypatch, cls: str, value: str) -> None:
    monkeypatch.setenv(f"SECOPS_RATE_LIMIT_{cls.upper()}", value)
    get_settings.cache_clear()


def test_headers_and_429_with_retry_after(sqlite_env, monkeypatch):
    _limit(monkeypatch, "read", "3/60")
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key()
    seen = []
    for _ in range(3):
        resp = client.get("/v1/jobs", headers=auth(key))
        assert resp.status_code == 200
        seen.append(resp.headers["ratelimit"])
    assert client.get("/v1/jobs", headers=auth(key)).status_code == 429
    resp = client.get("/v1/jobs", headers=auth(key))
    body = assert_problem(resp, 429)
    # refused requests are uses of the key too (counted in the limiter's round trip)
    assert int(get_redis().hget(key_service.USE_COUNTS, key_id_of(key))) == 5
    assert body["title"] == "Too many requests"
    assert_security_headers(resp)
    assert resp.headers["ratelimit-policy"] == '"read-ip";q=3;w=60, "read-key";q=3;w=60'
    assert seen[0].startswith('"read-ip";r=2;t=') and seen[2].startswith('"read-ip";r=0;t=')
    reset = int(resp.headers["ratelimit"].split(";t=")[1].split(",")[0])
    assert int(resp.headers["retry-after"]) >= reset >= 1
    # another route class is a separate budget
    assert client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(key)).status_code == 202
    with session_scope() as s:
        kinds = [e.kind for e in s.scalars(select(SecurityEvent))]
    assert kinds == ["ratelimit.rejected"]  # sampled: stored once a minute per IP


def test_failed_authentication_spends_the_auth_budget(sqlite_env, monkeypatch):
    _limit(monkeypatch, "auth", "3/60")
    client = TestClient(create_app(), raise_server_exceptions=False)
    for _ in range(3):
        assert_problem(client.get("/v1/jobs", headers=auth("secops_aaaaaaaa_" + "x" * 43)), 401)
    # budget spent: refused before the key is even looked up, valid key or not
    assert_problem(client.get("/v1/jobs", headers=auth(make_key())), 429)


def _request(peer: str, xff: str | None) -> Request:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers,
                    "method": "GET", "path": "/"})


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies(sqlite_env, monkeypatch):
    assert client_ip(_request("203.0.113.9", "1.1.1.1")) == "203.0.113.9"
    monkeypatch.setenv("SECOPS_TRUSTED_PROXIES", '["10.0.0.0/8", "127.0.0.1"]')
    get_settings.cache_clear()
    assert client_ip(_request("10.1.2.3", "198.51.100.7")) == "198.51.100.7"
    # a client-supplied hop to the left of the real client is ignored
    assert client_ip(_request("10.1.2.3", "6.6.6.6, 198.51.100.7, 10.9.9.9")) == "198.51.100.7"
    assert client_ip(_request("203.0.113.9", "198.51.100.7")) == "203.0.113.9"
    assert client_ip(_request("10.1.2.3", "not-an-ip")) == "10.1.2.3"
    assert client_ip(_request("10.1.2.3", None)) == "10.1.2.3"


def test_redis_down_fails_closed_with_503_and_a_security_event(sqlite_env, monkeypatch):
    from secops.embedded import free_port

    monkeypatch.setenv("SECOPS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key()
    resp = client.get("/v1/jobs", headers=auth(key))
    assert_problem(resp, 503)
    assert_security_headers(resp)
    with session_scope() as s:
        events = s.scalars(select(SecurityEvent)).all()
    assert [(e.kind, e.severity) for e in events] == [("ratelimit.unavailable", "high")]


@pytest.mark.integration
def test_limit_holds_across_two_api_processes_with_100_concurrent_clients(sqlite_env, tmp_path):
    """Two real API processes, 100 concurrent clients, limit 10: exactly 10 pass."""
    env = dict(sqlite_env, SECOPS_RATE_LIMIT_SUBMIT="10/minute")
    key = make_key()
    revoked = make_key(name="to-revoke")
    api1, url1 = start_api(env, tmp_path / "api1.log")
    api2, url2 = start_api(env, tmp_path / "api2.log")
    try:
        statuses: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(100)

        def client(i: int) -> None:
            url = url1 if i % 2 else url2
            with httpx.Client(timeout=60) as http:
                barrier.wait()
                resp = http.post(f"{url}/v1/jobs", json={"kind": "system.ping"},
                                 headers=auth(key))
            with lock:
                statuses.append(resp.status_code)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses.count(202) == 10, statuses
        assert statuses.count(429) == 90, statuses
        # revocation through one process is refused by the other at the next request
        assert httpx.get(f"{url1}/v1/jobs", headers=auth(revoked)).status_code == 200
        kid = httpx.get(f"{url2}/v1/keys", headers=auth(key)).json()
        rid = next(k["id"] for k in kid if k["name"] == "to-revoke")
        assert httpx.post(f"{url2}/v1/keys/{rid}/revoke", headers=auth(key)).status_code == 200
        assert httpx.get(f"{url1}/v1/jobs", headers=auth(revoked)).status_code == 401
    finally:
        api1.stop()
        api2.stop()
