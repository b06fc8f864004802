"""The console over HTTP(S) against the real app, Redis and SQLite: sign-in, sessions,
CSRF, login protection, roles, CSP, bad input."""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select

from secops.api.app import create_app
from secops.api.permissions import allowed
from secops.cli import cli
from secops.config import get_settings
from secops.db.models import Alert, AuditEntry, SecurityEvent
from secops.db.session import session_scope
from secops.services import console_sessions
from tests.console.conftest import (
    GOOD,
    browser,
    csrf_of,
    enrol,
    get_csrf,
    invite,
    login,
    setup_totp,
)
from tests.console.test_factors import rfc6238

COOKIE = "__Host-secops_session"
PAGES = {"/console/": "account:self", "/console/alerts": "alerts:read",
         "/console/jobs": "jobs:read", "/console/scans": "scans:read", "/console/dlp": "dlp:read",
         "/console/audit": "audit:read", "/console/keys": "keys:manage",
         "/console/schedules": "schedules:read", "/console/account": "account:self",
         "/console/users": "users:manage", "/console/compliance": "audit:read"}


def set_cookie_header(resp) -> SimpleCookie:
    jar = SimpleCookie()
    for value in resp.headers.get_list("set-cookie"):
        jar.load(value)
    return jar


def events(kind: str) -> list[SecurityEvent]:
    with session_scope() as session:
        rows = session.scalars(select(SecurityEvent).where(SecurityEvent.kind == kind)).all()
        session.expunge_all()
        return list(rows)


def test_enrol_sets_a_host_cookie_and_signs_in_an_analyst(app):
    client = browser(app)
    token = invite("ana", "analyst")
    resp = client.get(f"/console/enrol/{token}")
    assert resp.status_code == 200 and "Welcome, ana" in resp.text
    pre = set_cookie_header(resp)[COOKIE].value
    resp = client.post(f"/console/enrol/{token}", data={"csrf": csrf_of(resp.text),
                                                        "password": GOOD, "password2": GOOD})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/"
    raw = resp.headers["set-cookie"]
    cookie = set_cookie_header(resp)[COOKIE]
    assert cookie.value != pre and len(cookie.value) == 43  # 32 random bytes, rotated
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "strict"
    assert cookie["path"] == "/" and not cookie["domain"] and "Domain" not in raw
    assert client.get("/console/").status_code == 200
    # the link worked once
    resp = client.get(f"/console/enrol/{token}")
    assert resp.status_code == 400 and "invalid, already used or expired" in resp.text
    with session_scope() as session:
        assert [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))] \
            == ["users.create", "users.enrol"]
    assert [e.details["method"] for e in events("console.login")] == ["enrolment"]


def test_generic_failures_and_per_account_rate_limit(app, monkeypatch):
    monkeypatch.setenv("SECOPS_RATE_LIMIT_LOGIN_ACCOUNT", "3/900")
    get_settings.cache_clear()
    enrol(browser(app), "bo", "analyst")
    client = browser(app)
    wrong = login(client, "bo", GOOD + "!")
    unknown = login(client, "nobody-here", GOOD)
    assert wrong.status_code == unknown.status_code == 401
    message = re.search(r'id="error">([^<]+)<', wrong.text).group(1)
    assert message == re.search(r'id="error">([^<]+)<', unknown.text).group(1)
    assert "wrong" in message
    failures = events("auth.failure")
    assert [e.details["account"] for e in failures] == ["bo", "nobody-here"]
    login(client, "bo", "another wrong password")
    login(client, "bo", "a third wrong password!")
    resp = login(client, "bo", GOOD)  # right password, but the account's budget is spent
    assert resp.status_code == 429 and "Too many failed attempts" in resp.text
    assert login(browser(app), "BO", GOOD).status_code == 429
    # other accounts from the same client are not locked by it
    enrol(browser(app), "cy", "auditor")
    assert login(client, "cy", GOOD).status_code == 303


def test_failed_logins_raise_the_configured_alerts(console_env, monkeypatch):
    monkeypatch.setenv("SECOPS_ALERT_AUTH_FAILURES", "2/300")
    get_settings.cache_clear()
    client = browser(create_app())
    for _ in range(3):
        assert login(client, "mallory-target", "not the password at all").status_code == 401
    with session_scope() as session:
        rules = sorted(a.rule for a in session.scalars(select(Alert)))
    assert rules == ["auth.failures.ip", "console.failures.account"]


def test_admin_must_set_up_mfa_then_totp_and_backup_codes(app):
    client = browser(app)
    assert enrol(client, "root", "admin") == "/console/account/setup"
    for path in ("/console/", "/console/keys", "/console/audit"):
        resp = client.get(path)
        assert resp.status_code == 303 and resp.headers["location"] == "/console/account/setup"
    secret, codes, used_at = setup_totp(client)
    assert client.get("/console/keys").status_code == 200
    client.post("/console/logout", data={"csrf": get_csrf(client, "/console/account")})
    # password, then TOTP: the code just used is refused (replay), the next step's accepted
    other = browser(app)
    resp = login(other, "root")
    assert resp.status_code == 303 and resp.headers["location"] == "/console/login/mfa"
    assert other.get("/console/keys").headers["location"] == "/console/login/mfa"
    csrf = get_csrf(other, "/console/login/mfa")
    resp = other.post("/console/login/mfa", data={"csrf": csrf, "code": rfc6238(secret, used_at)})
    assert resp.status_code == 401 and "Codes work once" in resp.text
    resp = other.post("/console/login/mfa", data={"csrf": csrf,
                                                  "code": rfc6238(secret, used_at + 30)})
    assert resp.status_code == 303 and resp.headers["location"] == "/console/"
    assert other.get("/console/keys").status_code == 200
    assert [e.details["factor"] for e in events("auth.mfa_failure")] == ["totp"]
    # a backup code signs in once
    third = browser(app)
    login(third, "root")
    csrf = get_csrf(third, "/console/login/mfa")
    assert third.post("/console/login/mfa", data={"csrf": csrf, "backup": codes[0]}).status_code == 303
    fourth = browser(app)
    login(fourth, "root")
    csrf = get_csrf(fourth, "/console/login/mfa")
    assert fourth.post("/console/login/mfa", data={"csrf": csrf, "backup": codes[0]}).status_code == 401
    assert [e.details["remaining"] for e in events("console.backup_code_used")] == [9]


def test_csrf_origin_and_fetch_site_are_checked(app):
    client = browser(app)
    enrol(client, "an", "analyst")
    with session_scope() as session:
        alert = Alert(rule="r", severity="high", title="t", subject="s", dedup_key="r:s",
                      status="open", occurrences=1, details={})
        session.add(alert)
        session.flush()
        alert_id = alert.id
    csrf = get_csrf(client, "/console/alerts")
    path = f"/console/alerts/{alert_id}/ack"
    refused = [
        client.post(path, data={}),
        client.post(path, data={"csrf": "x" * 43}),
        client.post(path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"}),
        client.post(path, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"}),
        client.post(path, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "same-site"}),
    ]
    for resp in refused:
        assert resp.status_code == 403 and "cross-site request check failed" in resp.text
    with session_scope() as session:
        assert session.get(Alert, alert_id).status == "open"
    assert len(events("console.csrf_refused")) == 5
    # GET changes nothing
    assert client.get(path).status_code == 405
    resp = client.post(path, data={"csrf": csrf}, headers={"Origin": "https://testserver",
                                                           "Sec-Fetch-Site": "same-origin"})
    assert resp.status_code == 303
    with session_scope() as session:
        assert session.get(Alert, alert_id).status == "acknowledged"


def test_session_fixation_logout_and_sign_out_everywhere(app, redis_server):
    enrol(browser(app), "fx", "analyst")
    attacker = browser(app)
    planted = attacker.get("/console/login").cookies[COOKIE]  # a real anonymous session id
    victim = browser(app)
    victim.cookies.set(COOKIE, planted, domain="testserver.local")
    victim.cookies.set(COOKIE, planted)
    resp = login(victim, "fx")
    assert resp.status_code == 303
    signed_in = set_cookie_header(resp)[COOKIE].value
    assert signed_in != planted
    assert attacker.get("/console/").status_code == 303  # the planted id is not signed in
    kv = redis.Redis.from_url(redis_server.url)
    assert kv.get(console_sessions.PREFIX + console_sessions.digest(planted)) is None
    ttl = kv.ttl(console_sessions.PREFIX + console_sessions.digest(signed_in))
    assert 0 < ttl <= get_settings().console_idle_timeout
    # a second session; sign out everywhere ends both
    second = browser(app)
    login(second, "fx")
    assert second.get("/console/account").text.count("<tr><td>") == 3  # enrolment's too
    resp = second.post("/console/account/sessions/end-all",
                       data={"csrf": get_csrf(second, "/console/account")})
    assert resp.status_code == 303
    for client in (victim, second):
        assert client.get("/console/").headers["location"] == "/console/login"
    # logout deletes the server state: the old id does not come back
    third = browser(app)
    login(third, "fx")
    sid = third.cookies[COOKIE]
    third.post("/console/logout", data={"csrf": get_csrf(third, "/console/")})
    assert kv.get(console_sessions.PREFIX + console_sessions.digest(sid)) is None
    stale = browser(app)
    stale.cookies.set(COOKIE, sid)
    assert stale.get("/console/").status_code == 303


def test_disabling_a_user_ends_their_sessions(app):
    client = browser(app)
    enrol(client, "dis", "auditor")
    assert client.get("/console/audit").status_code == 200
    assert CliRunner().invoke(cli, ["users", "disable", "dis"]).exit_code == 0
    assert client.get("/console/audit").headers["location"] == "/console/login"
    assert login(browser(app), "dis").status_code == 401


def test_absolute_timeout_ends_a_session(app, redis_server):
    client = browser(app)
    enrol(client, "old", "analyst")
    kv = redis.Redis.from_url(redis_server.url)
    key = console_sessions.PREFIX + console_sessions.digest(client.cookies[COOKIE])
    import json

    data = json.loads(kv.get(key))
    data["created"] = time.time() - get_settings().console_absolute_timeout - 1
    kv.set(key, json.dumps(data), ex=60)
    assert client.get("/console/").headers["location"] == "/console/login"
    assert kv.get(key) is None


@pytest.mark.parametrize("role", ["analyst", "auditor"])
def test_pages_follow_the_api_permission_table(app, role):
    client = browser(app)
    enrol(client, f"u-{role}", role)
    for path, permission in PAGES.items():
        resp = client.get(path)
        if allowed(role, permission):
            assert resp.status_code == 200, (path, resp.text[:300])
        else:
            assert resp.status_code == 403 and "does not allow" in resp.text, path
    assert client.get("/console/audit/export").status_code == (200 if role == "auditor" else 403)


def test_every_page_has_a_fresh_nonce_csp_without_unsafe_inline(app):
    client = browser(app)
    enrol(client, "csp", "analyst")
    seen = set()
    for path in ("/console/", "/console/jobs", "/console/alerts", "/console/account"):
        resp = client.get(path)
        policy = resp.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", policy).group(1)
        assert f'nonce="{nonce}"' in resp.text and nonce not in seen
        seen.add(nonce)
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
        assert "<script>" not in resp.text and " onclick=" not in resp.text
        assert " style=" not in resp.text


def test_bad_input_is_refused_with_a_message_and_changes_nothing(app):
    client = browser(app)
    csrf = get_csrf(client, "/console/login")
    resp = client.post("/console/login", data={"csrf": csrf, "name": "n" * 101,
                                                "password": GOOD})
    assert resp.status_code == 400 and "too long" in resp.text
    resp = client.post("/console/login", data={"csrf": csrf, "name": "n",
                                                "password": "p" * 1025})
    assert resp.status_code == 400 and "too long" in resp.text
    token = invite("weak", "analyst")
    csrf = get_csrf(client, f"/console/enrol/{token}")
    for password, message in (("password1234", "commonly used"), ("short", "12 to 1024"),
                              ("weak", "12 to 1024")):
        resp = client.post(f"/console/enrol/{token}", data={"csrf": csrf, "password": password,
                                                            "password2": password})
        assert resp.status_code == 400 and message in resp.text, password
    resp = client.post(f"/console/enrol/{token}", data={"csrf": csrf, "password": GOOD,
                                                        "password2": GOOD + "x"})
    assert resp.status_code == 400 and "differ" in resp.text
    resp = client.get("/console/enrol/" + "A" * 43)
    assert resp.status_code == 400 and "invalid, already used or expired" in resp.text
    # the link still works after the refusals (nothing was spent)
    assert client.post(f"/console/enrol/{token}", data={"csrf": csrf, "password": GOOD,
                                                        "password2": GOOD}).status_code == 303


def test_a_factor_change_ends_other_sessions_and_rotates_this_one(app):
    first = browser(app)
    enrol(first, "fc", "analyst")
    second = browser(app)
    assert login(second, "fc").status_code == 303
    before = first.cookies[COOKIE]
    setup_totp(first)  # from the account page of the first session
    assert first.cookies[COOKIE] != before  # rotated at the change
    assert first.get("/console/account").status_code == 200
    assert second.get("/console/").headers["location"] == "/console/login"
    changed = events("console.factor_changed")
    assert [(e.details["change"], e.details["sessions_ended"]) for e in changed] == [("totp_added", 1)]
