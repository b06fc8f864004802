"""/readyz: details for authenticated callers only, cached, limited per address, and
answered without tying up the event loop."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.config import get_settings
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem


def test_details_only_for_a_valid_key(sqlite_env, monkeypatch):
    client = TestClient(create_app(), raise_server_exceptions=False)
    monkeypatch.setenv("SECOPS_STORAGE_KEY", "short")  # unusable since the start: not ready
    get_settings.cache_clear()
    anonymous = assert_problem(client.get("/readyz"), 503)
    assert "checks" not in anonymous and "storage_key" not in str(anonymous)
    wrong = assert_problem(client.get("/readyz", headers=auth("secops_aaaaaaaa_" + "x" * 43)), 503)
    assert "checks" not in wrong
    body = assert_problem(client.get("/readyz", headers=auth(make_key("service", ["system.ping"]))),
                          503)
    checks = body["checks"]
    assert (checks["secrets"], checks["database"], checks["redis"], checks["workers"]) == (
        {"storage_key": "too short"}, "ok", "ok", 0)


def test_answer_is_cached_and_rate_limited(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_READYZ_RATE", "3/60")
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key("auditor")
    first = client.get("/readyz", headers=auth(key)).json()
    second = client.get("/readyz", headers=auth(key)).json()
    # the second answer is the first one's, not a second worker ping round
    assert second["checks"]["checked_at"] == first["checks"]["checked_at"]
    assert client.get("/readyz").status_code == 503
    resp = client.get("/readyz")
    assert_problem(resp, 429)
    assert resp.headers["ratelimit-policy"] == '"readyz-ip";q=3;w=60'
    assert client.get("/healthz").status_code == 200  # liveness is not limited


def test_concurrent_checks_share_one_round(sqlite_env):
    """Ten concurrent callers on a fresh process: one check runs, all get its answer."""
    app = create_app()

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            key = make_key("auditor")
            return list(await asyncio.gather(
                *(http.get("/readyz", headers=auth(key)) for _ in range(10))))

    answers = asyncio.run(run())
    assert [r.status_code for r in answers] == [503] * 10
    assert len({r.json()["checks"]["checked_at"] for r in answers}) == 1


def test_limit_is_shared_by_api_processes_and_local_while_redis_is_down(sqlite_env,
                                                                          monkeypatch):
    """Two API processes (two apps, each with its own readiness state) share one budget
    per address in Redis; with Redis unreachable each process still limits on its own."""
    monkeypatch.setenv("SECOPS_READYZ_RATE", "3/60")
    get_settings.cache_clear()
    first = TestClient(create_app(), raise_server_exceptions=False)
    second = TestClient(create_app(), raise_server_exceptions=False)
    assert [first.get("/readyz").status_code for _ in range(2)] == [503, 503]
    assert second.get("/readyz").status_code == 503
    refused = second.get("/readyz")
    assert_problem(refused, 429)
    assert refused.headers["ratelimit-policy"] == '"readyz-ip";q=3;w=60'
    assert first.get("/readyz").status_code == 429

    monkeypatch.setenv("SECOPS_REDIS_URL", "redis://127.0.0.1:9/0")  # nothing listens
    get_settings.cache_clear()
    alone = TestClient(create_app(), raise_server_exceptions=False)
    answers = [alone.get("/readyz") for _ in range(4)]
    assert [r.status_code for r in answers] == [503, 503, 503, 429]
    assert answers[3].headers["ratelimit-policy"] == '"readyz-ip";q=3;w=60'
