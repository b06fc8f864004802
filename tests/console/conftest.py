"""Console fixtures: an HTTPS test client of the real app, users created through the CLI's service."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.session import session_scope
from secops.services import audit
from secops.services import users as user_service
from tests.console.test_factors import rfc6238

ORIGIN = "https://testserver"
GOOD = "violet tractor humming 42"


@pytest.fixture
def console_env(sqlite_env, monkeypatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("SECOPS_CONSOLE_ORIGIN", ORIGIN)
    get_settings.cache_clear()
    yield sqlite_env
    get_settings.cache_clear()


@pytest.fixture
def app(console_env):
    return create_app()


def browser(app) -> TestClient:
    return TestClient(app, base_url=ORIGIN, raise_server_exceptions=False,
                      follow_redirects=False)


def invite(name: str, role: str) -> str:
    with session_scope() as session:
        enrolment = user_service.create_user(session=session, name=name, role=role,
                                             created_by="tests")
        audit.record(session=session, ctx=audit.AuditContext(actor="tests"),
                     action="users.create", target=f"user:{enrolment.user.id}")
        return enrolment.token


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]*)"', html)
    assert match, html[:500]
    return match.group(1)


def get_csrf(client: TestClient, path: str) -> str:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
    return csrf_of(resp.text)


def enrol(client: TestClient, name: str, role: str, password: str = GOOD) -> str:
    token = invite(name, role)
    csrf = get_csrf(client, f"/console/enrol/{token}")
    resp = client.post(f"/console/enrol/{token}", data={"csrf": csrf, "password": password,
                                                        "password2": password})
    assert resp.status_code == 303, resp.text[:500]
    return resp.headers["location"]


def login(client: TestClient, name: str, password: str = GOOD):
    csrf = get_csrf(client, "/console/login")
    return client.post("/console/login", data={"csrf": csrf, "name": name, "password": password})


def totp_secret_from(html: str) -> bytes:
    uri = unquote(re.search(r'id="totp-uri">([^<]+)<', html).group(1)).replace("&amp;", "&")
    b32 = parse_qs(urlparse(uri).query)["secret"][0]
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


def setup_totp(client: TestClient) -> tuple[bytes, list[str], float]:
    """From the setup or account page: begin, confirm with the current code; returns the
    secret, the backup codes shown, and the time of the code used."""
    csrf = get_csrf(client, "/console/account/setup")
    resp = client.post("/console/account/totp/begin", data={"csrf": csrf})
    assert resp.status_code == 200, resp.text[:300]
    secret = totp_secret_from(resp.text)
    now = time.time()
    resp = client.post("/console/account/totp/confirm",
                       data={"csrf": csrf_of(resp.text), "code": rfc6238(secret, now)})
    assert resp.status_code == 200, resp.text[:500]
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", resp.text)
    assert len(codes) == 10
    return secret, codes, now
