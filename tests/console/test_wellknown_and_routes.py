"""security.txt (RFC 9116) from the settings; every console route declares a permission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from secops.api.app import create_app
from secops.api.permissions import ALL_PERMISSIONS, PUBLIC
from secops.config import get_settings
from tests.console.conftest import browser
from tests.security.conftest import declared_permission, walk

PUBLIC_CONSOLE = {"/", "/.well-known/security.txt", "/console/static/{name}", "/console/login",
                  "/console/login/mfa", "/console/logout", "/console/enrol/{token}",
                  "/console/passkeys/login/options", "/console/passkeys/login/verify"}


def parse_security_txt(text: str) -> dict[str, list[str]]:
    """RFC 9116 section 2.3: "Field: value" lines, comments with #, CRLF or LF."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, value = line.partition(": ")
        assert sep and name and value.strip() == value, line
        fields.setdefault(name.lower(), []).append(value)
    return fields


def check_security_txt(text: str, now: datetime) -> dict[str, list[str]]:
    fields = parse_security_txt(text)
    assert fields["contact"], "Contact is required"
    assert all(c.startswith(("mailto:", "https://", "tel:")) for c in fields["contact"])
    assert len(fields["expires"]) == 1, "Expires must appear once"
    expires = datetime.strptime(fields["expires"][0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert expires > now, "Expires is in the past"
    assert expires <= now + timedelta(days=366), "Expires is more than a year ahead"
    return fields


@pytest.fixture
def security_env(sqlite_env, monkeypatch):
    def configure(expires: datetime) -> None:
        monkeypatch.setenv("SECOPS_SECURITY_TXT_CONTACT",
                           '["mailto:security@example.org", "https://example.org/report"]')
        monkeypatch.setenv("SECOPS_SECURITY_TXT_EXPIRES", expires.isoformat())
        monkeypatch.setenv("SECOPS_SECURITY_TXT_POLICY", "https://example.org/disclosure")
        monkeypatch.setenv("SECOPS_SECURITY_TXT_LANGUAGES", "en, de")
        monkeypatch.setenv("SECOPS_CONSOLE_ORIGIN", "https://secops.example.org")
        get_settings.cache_clear()
    yield configure
    get_settings.cache_clear()


def test_security_txt_from_configuration(security_env):
    now = datetime.now(UTC)
    security_env(now + timedelta(days=180))
    resp = browser(create_app()).get("/.well-known/security.txt")
    assert resp.status_code == 200 and resp.headers["content-type"] == "text/plain; charset=utf-8"
    fields = check_security_txt(resp.text, now)
    assert fields["contact"] == ["mailto:security@example.org", "https://example.org/report"]
    assert fields["policy"] == ["https://example.org/disclosure"]
    assert fields["preferred-languages"] == ["en, de"]
    assert fields["canonical"] == ["https://secops.example.org/.well-known/security.txt"]


@pytest.mark.parametrize("days", [-1, 400])
def test_the_check_fails_for_a_stale_or_far_expiry(security_env, days):
    now = datetime.now(UTC)
    security_env(now + timedelta(days=days))
    text = browser(create_app()).get("/.well-known/security.txt").text
    with pytest.raises(AssertionError, match="Expires"):
        check_security_txt(text, now)


def test_no_security_txt_without_configuration(sqlite_env):
    resp = browser(create_app()).get("/.well-known/security.txt")
    assert resp.status_code == 404


def test_every_console_route_declares_a_permission_and_needs_a_session(sqlite_env):
    app = create_app()
    client = browser(app)
    console = [r for r in walk(list(app.routes)) if isinstance(r, APIRoute)
               and not r.include_in_schema]
    assert len(console) >= 30
    for route in console:
        permission = declared_permission(route)
        assert permission == PUBLIC or permission in ALL_PERMISSIONS, route.path
        if permission == PUBLIC:
            assert route.path in PUBLIC_CONSOLE, route.path
            continue
        url = route.path.replace("{", "").replace("}", "")
        for method in route.methods - {"HEAD"}:
            resp = client.request(method, url)
            if method == "GET":
                assert resp.status_code == 303 and resp.headers["location"] == "/console/login"
            else:
                assert resp.status_code == 401 and "Sign in again" in resp.text, route.path


@pytest.mark.parametrize("name, value", [
    ("SECOPS_CONSOLE_ORIGIN", "console.example.net"),
    ("SECOPS_CONSOLE_ORIGIN", "https://console.example.net/console"),
    ("SECOPS_CONSOLE_MFA_ROLES", '["admin", "root"]'),
])
def test_bad_console_settings_are_named(monkeypatch, name, value):
    from secops.errors import ConfigurationError

    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError) as err:
        get_settings()
    assert name in err.value.message and value not in err.value.message
    get_settings.cache_clear()
