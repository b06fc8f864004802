"""API key lifecycle through the API and the CLI: create, list, rotate, revoke, expiry."""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select, update

from secops.cli import cli
from secops.db.base import utcnow
from secops.db.models import ApiKey, AuditEntry
from secops.db.session import session_scope
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem


def actions() -> list[str]:
    with session_scope() as s:
        return [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def test_create_list_never_shows_secret_and_defaults_to_90_days(client):
    admin = make_key()
    resp = client.post("/v1/keys", json={"name": "ci", "role": "service",
                                         "allowed_kinds": ["system.ping"]}, headers=auth(admin))
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["key"].startswith(f"secops_{created['prefix']}_")
    from datetime import datetime

    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=89, hours=23) < expires - utcnow() <= timedelta(days=90)
    listed = client.get("/v1/keys", headers=auth(admin))
    assert listed.status_code == 200
    assert created["key"] not in listed.text and "digest" not in listed.text
    assert {k["name"] for k in listed.json()} >= {"ci", "test"}
    assert client.get(f"/v1/keys/{created['prefix']}", headers=auth(admin)).json()["id"] == created["id"]
    # the new key works, and its use is counted
    assert client.get("/v1/jobs", headers=auth(created["key"])).status_code == 200
    got = client.get(f"/v1/keys/{created['id']}", headers=auth(admin)).json()
    assert got["usage_count"] == 1 and got["last_used_at"] is not None
    assert actions() == ["keys.create"]


def test_bad_key_requests_are_problems_and_change_nothing(client):
    admin = make_key()
    for body in ({"name": "", "role": "admin"}, {"name": "x", "role": "root"},
                 {"name": "x", "role": "service"},
                 {"name": "x", "role": "analyst", "allowed_kinds": ["no.such"]},
                 {"name": "x", "expires_in_days": 0}, {"name": "x", "extra": 1}):
        assert_problem(client.post("/v1/keys", json=body, headers=auth(admin)), 422)
    with session_scope() as s:
        assert len(s.scalars(select(ApiKey)).all()) == 1
    assert actions() == []


def test_rotate_keeps_old_secret_for_grace_period_then_stops(client):
    admin = make_key()
    old = make_key(role="analyst", name="rotating")
    with session_scope() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "rotating"))
    resp = client.post(f"/v1/keys/{key_id}/rotate", json={"grace_hours": 24}, headers=auth(admin))
    assert resp.status_code == 200, resp.text
    new = resp.json()["key"]
    assert new != old and new.split("_")[1] == old.split("_")[1]
    assert client.get("/v1/jobs", headers=auth(new)).status_code == 200
    assert client.get("/v1/jobs", headers=auth(old)).status_code == 200  # grace period
    with session_scope() as s:  # the grace period ends
        s.execute(update(ApiKey).where(ApiKey.id == key_id)
                  .values(previous_valid_until=utcnow() - timedelta(seconds=1)))
    assert_problem(client.get("/v1/jobs", headers=auth(old)), 401)
    assert client.get("/v1/jobs", headers=auth(new)).status_code == 200
    # a grace of zero ends the replaced secret at once
    newer = client.post(f"/v1/keys/{key_id}/rotate", json={"grace_hours": 0},
                        headers=auth(admin)).json()["key"]
    assert_problem(client.get("/v1/jobs", headers=auth(new)), 401)
    assert client.get("/v1/jobs", headers=auth(newer)).status_code == 200
    assert actions() == ["keys.rotate", "keys.rotate"]


def _grace_after_rotation(client, admin: str, key_id: str) -> timedelta:
    """Rotate with no body; how long the replaced secret stays valid, within the request."""
    before = utcnow()
    resp = client.post(f"/v1/keys/{key_id}/rotate", headers=auth(admin))
    after = utcnow()
    assert resp.status_code == 200, resp.text
    with session_scope() as s:
        valid_until = s.get(ApiKey, key_id).previous_valid_until
    return valid_until - before, valid_until - after


def test_rotation_without_a_body_uses_the_default_grace(client, monkeypatch):
    """No body: the replaced secret stays valid for 24 hours, or for
    SECOPS_API_KEY_ROTATION_GRACE_HOURS when set."""
    from secops.config import get_settings

    admin = make_key()
    old = make_key(role="analyst", name="rotating")
    with session_scope() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "rotating"))
    most, least = _grace_after_rotation(client, admin, key_id)
    assert least <= timedelta(hours=24) <= most
    assert client.get("/v1/jobs", headers=auth(old)).status_code == 200
    monkeypatch.setenv("SECOPS_API_KEY_ROTATION_GRACE_HOURS", "3")
    get_settings.cache_clear()
    most, least = _grace_after_rotation(client, admin, key_id)
    assert least <= timedelta(hours=3) <= most


def test_revoked_expired_and_unknown_keys_get_identical_401(client):
    admin = make_key()
    revoked, expired = make_key(name="r"), make_key(name="e")
    with session_scope() as s:
        rid = s.scalar(select(ApiKey.id).where(ApiKey.name == "r"))
        s.execute(update(ApiKey).where(ApiKey.name == "e")
                  .values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/v1/jobs", headers=auth(revoked)).status_code == 200
    assert client.post(f"/v1/keys/{rid}/revoke", headers=auth(admin)).json()["revoked_at"]
    unknown = "secops_" + revoked.split("_")[1][::-1] + "_" + "B" * 43
    bodies = []
    for key in (revoked, expired, unknown, revoked[:-1] + ("A" if revoked[-1] != "A" else "B")):
        resp = client.get("/v1/jobs", headers=auth(key))
        body = assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        body.pop("request_id")
        bodies.append(body)
    assert all(b == bodies[0] for b in bodies)
    # a revoked key cannot be rotated or changed back to life
    assert_problem(client.post(f"/v1/keys/{rid}/rotate", headers=auth(admin)), 422)
    assert actions() == ["keys.revoke"]


def test_role_change_is_audited(client):
    admin = make_key()
    make_key(role="analyst", name="promote")
    with session_scope() as s:
        kid = s.scalar(select(ApiKey.id).where(ApiKey.name == "promote"))
    resp = client.patch(f"/v1/keys/{kid}", json={"role": "auditor"}, headers=auth(admin))
    assert resp.status_code == 200 and resp.json()["role"] == "auditor"
    client.patch(f"/v1/keys/{kid}", json={"name": "renamed"}, headers=auth(admin))
    assert_problem(client.patch(f"/v1/keys/{kid}", json={"role": "service"},
                                headers=auth(admin)), 422)  # service needs kinds
    assert actions() == ["keys.role_change", "keys.update"]
    with session_scope() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).first()
        assert entry.details["before"]["role"] == "analyst"
        assert entry.details["after"]["role"] == "auditor"
        assert entry.client_ip == "testclient" and entry.request_id


def test_cli_rotate_and_revoke_are_audited(sqlite_env):
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--name", "cli", "--role", "analyst", "--json"])
    assert created.exit_code == 0, created.output
    key_id = json.loads(created.output)["id"]
    rotated = runner.invoke(cli, ["keys", "rotate", key_id, "--grace-hours", "1", "--json"])
    assert rotated.exit_code == 0, rotated.output
    out = json.loads(rotated.output)
    assert out["key"].startswith("secops_") and out["old_secret_valid_until"]
    assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    assert actions() == ["keys.create", "keys.rotate", "keys.revoke"]
    with session_scope() as s:
        assert all(e.actor.startswith("cli:") for e in s.scalars(select(AuditEntry)))
    verify = runner.invoke(cli, ["audit", "verify"])
    assert verify.exit_code == 0 and "ok" in verify.output
