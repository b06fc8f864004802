"""Fixtures for the security tests: an app client, every route of the app, problem checks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from secops.api.app import create_app
from secops.config import get_settings

PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.fixture
def client(sqlite_env: dict[str, str]) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Generous limits, for tests that make many requests on purpose."""
    for cls in ("submit", "read", "auth", "keys"):
        monkeypatch.setenv(f"SECOPS_RATE_LIMIT_{cls.upper()}", "100000/60")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def internal_ca(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal CA, so the certificate authority's routes answer instead of 503."""
    from datetime import UTC, datetime

    from secops.certs import ca

    authority = ca.create_authority("Tests", now=datetime.now(UTC))
    (tmp_path / "chain.pem").write_bytes(authority.chain_pem())
    (tmp_path / "ca.key").write_bytes(ca.key_pem(authority.intermediate_key))
    monkeypatch.setenv("SECOPS_CERTS_CA_CHAIN_FILE", str(tmp_path / "chain.pem"))
    monkeypatch.setenv("SECOPS_CERTS_CA_KEY_FILE", str(tmp_path / "ca.key"))
    get_settings.cache_clear()


def assert_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM), resp.headers
    body = resp.json()
    assert body["status"] == status and body["request_id"] == resp.headers["x-request-id"]
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in resp.text
    return body


PUBLIC_CACHEABLE = frozenset({"/v1/certs/ca/crl", "/v1/certs/ca/chain"})


def assert_security_headers(resp) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (name, resp.status_code, dict(resp.headers))
    assert "permissions-policy" in resp.headers
    assert "server" not in resp.headers and "x-powered-by" not in resp.headers
    if resp.status_code == 200 and resp.request.url.path in PUBLIC_CACHEABLE:
        # the CA's revocation list and chain are public documents relying parties cache
        assert resp.headers.get("cache-control") == "public, max-age=300"
    else:
        assert resp.headers.get("cache-control") == "no-store"
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["x-request-id"])


@dataclass(frozen=True)
class RouteInfo:
    path: str
    method: str
    route: APIRoute

    def url(self, fill: str = "00000000-0000-0000-0000-000000000000") -> str:
        return re.sub(r"\{[^}]+\}", fill, self.path)


def walk(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, through FastAPI's included routers (``original_router``) and mounts."""
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        nested = getattr(inner, "routes", None)
        if nested is not None and not isinstance(route, APIRoute):
            yield from walk(list(nested))
        else:
            yield route


def api_routes(app) -> list[RouteInfo]:
    out = []
    for route in walk(list(app.routes)):
        # The console's pages (and security.txt) are not part of the bearer-key API:
        # they are left out of its schema and tested in tests/console.
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods - {"HEAD"}):
                out.append(RouteInfo(route.path, method, route))
    return out


def declared_permission(route: APIRoute) -> str | None:
    """The permission a route declares through ``require(...)`` or ``public()``."""
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        permission = getattr(dep.call, "permission", None)
        if permission is not None:
            return str(permission)
        stack.extend(dep.dependencies)
    return None
