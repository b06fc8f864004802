"""Security headers on every route and every status; CORS from the allowlist only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.config import get_settings
from secops.errors import ConfigurationError
from tests.factories import auth, make_key
from tests.security.conftest import api_routes, assert_problem, assert_security_headers


def test_headers_on_every_route_for_every_outcome(client, limits):
    admin = make_key()
    auditor = make_key(role="auditor", name="aud")
    statuses: set[int] = set()
    for info in api_routes(client.app):
        body = {} if info.method in ("POST", "PATCH") else None
        for headers in ({}, auth(admin), auth(auditor)):
            resp = client.request(info.method, info.url(), headers=headers, json=body)
            assert_security_headers(resp)
            assert "strict-transport-security" not in resp.headers
            statuses.add(resp.status_code)
    for resp in (client.get("/no/such/path"), client.delete("/healthz"),
                 client.post("/v1/jobs", content=b"{", headers={**auth(admin),
                                                                "content-type": "application/json"}),
                 client.post("/v1/jobs", content=b"x" * (get_settings().max_body_bytes + 1),
                             headers={**auth(admin), "content-type": "application/json"}),
                 client.get("/openapi.json"),
                 client.post("/v1/jobs", json={"kind": "system.ping"}, headers=auth(admin)),
                 client.post("/v1/keys", json={"name": "n"}, headers=auth(admin))):
        assert_security_headers(resp)
        statuses.add(resp.status_code)
    assert {200, 201, 202, 400, 401, 403, 404, 405, 413, 422} <= statuses


def test_headers_on_500_and_hsts_over_tls(sqlite_env):
    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    client = TestClient(app, raise_server_exceptions=False)
    resp = client.get("/boom")
    body = assert_problem(resp, 500)
    assert body["detail"] == "internal error" and "hunter2" not in resp.text
    assert_security_headers(resp)
    tls = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    resp = tls.get("/healthz")
    assert resp.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


def test_hsts_when_configured(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_HSTS", "true")
    get_settings.cache_clear()
    resp = TestClient(create_app()).get("/no/such/path")
    assert resp.status_code == 404 and "strict-transport-security" in resp.headers


def test_cors_allowlist_never_wildcard_with_credentials(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_CORS_ORIGINS", '["https://console.example"]')
    monkeypatch.setenv("SECOPS_CORS_ALLOW_CREDENTIALS", "true")
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    pre = client.options("/v1/jobs", headers={"Origin": "https://console.example",
                                              "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://console.example"
    assert pre.headers["access-control-allow-credentials"] == "true"
    assert_security_headers(pre)
    bad = client.options("/v1/jobs", headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "POST"})
    assert bad.headers.get("access-control-allow-origin") is None
    got = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in got.headers
    monkeypatch.setenv("SECOPS_CORS_ORIGINS", '["*"]')
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError):
        get_settings()


def test_no_cors_headers_without_configuration(client):
    resp = client.get("/healthz", headers={"Origin": "https://console.example"})
    assert "access-control-allow-origin" not in resp.headers
