"""The console's working pages do the API's work through the same services, audited."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from secops.db.models import ApiKey, AuditEntry, Job
from secops.db.session import session_scope
from secops.services import keys as key_service
from tests.console.conftest import browser, enrol, get_csrf, setup_totp
from tests.factories import auth


def admin_client(app):
    client = browser(app)
    enrol(client, "root", "admin")
    setup_totp(client)
    return client


def test_keys_create_rotate_revoke(app):
    client = admin_client(app)
    csrf = get_csrf(client, "/console/keys")
    resp = client.post("/console/keys", data={"csrf": csrf, "name": "ci", "role": "service",
                                              "days": "30", "kinds": ["system.ping"]})
    assert resp.status_code == 200, resp.text[:300]
    plaintext = re.search(r'id="issued-key">([^<]+)<', resp.text).group(1)
    assert key_service.KEY_PATTERN.match(plaintext)
    assert client.get("/v1/jobs", headers=auth(plaintext)).status_code == 200
    with session_scope() as session:
        key = session.scalar(select(ApiKey))
        assert (key.name, key.role, key.allowed_kinds) == ("ci", "service", ["system.ping"])
        key_id = key.id
    resp = client.post(f"/console/keys/{key_id}/rotate", data={"csrf": csrf})
    rotated = re.search(r'id="issued-key">([^<]+)<', resp.text).group(1)
    assert rotated != plaintext and client.get("/v1/jobs", headers=auth(rotated)).status_code == 200
    assert client.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf}).status_code == 303
    assert client.get("/v1/jobs", headers=auth(rotated)).status_code == 401
    bad = client.post("/console/keys", data={"csrf": csrf, "name": "x", "role": "service"})
    assert bad.status_code == 400 and "must list the job kinds" in bad.text
    with session_scope() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("keys.%")).order_by(AuditEntry.seq))]
        actors = {e.actor for e in session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("keys.%")))}
    assert actions == ["keys.create", "keys.rotate", "keys.revoke"]
    assert len(actors) == 1 and actors.pop().startswith("user:")


def test_jobs_filter_detail_cancel_and_audit_export(app):
    client = admin_client(app)
    with session_scope() as session:
        for kind, status in (("system.ping", "queued"), ("audit.verify", "succeeded")):
            session.add(Job(kind=kind, params={}, status=status, attempts=0, submitted_by="t"))
    resp = client.get("/console/jobs?kind=system.ping")
    assert resp.text.count('href="/console/jobs/') == 1 and "1 job(s)" in resp.text
    assert client.get("/console/jobs?kind=no.such").status_code == 400
    with session_scope() as session:
        queued = session.scalar(select(Job).where(Job.kind == "system.ping")).id
        done = session.scalar(select(Job).where(Job.kind == "audit.verify")).id
    assert 'id="cancel"' in client.get(f"/console/jobs/{queued}").text
    csrf = get_csrf(client, "/console/jobs")
    assert client.post(f"/console/jobs/{queued}/cancel", data={"csrf": csrf}).status_code == 303
    refused = client.post(f"/console/jobs/{done}/cancel", data={"csrf": csrf})
    assert refused.status_code == 409 and "already succeeded" in refused.text
    with session_scope() as session:
        assert session.get(Job, queued).status == "cancelled"
        assert session.get(Job, done).status == "succeeded"
    page = client.get("/console/audit?action=jobs.cancel")
    assert "1 entry." in page.text
    lines = client.get("/console/audit/export?format=jsonl").text.splitlines()
    exported = [json.loads(line) for line in lines]
    assert [e["seq"] for e in exported] == list(range(1, len(exported) + 1))
    assert "jobs.cancel" in [e["action"] for e in exported]
    csv = client.get("/console/audit/export?format=csv")
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("seq,")
    assert client.get("/console/audit?since=yesterday").status_code == 400
    assert client.get("/console/audit/export?format=xml").status_code == 400


def test_users_page_invites_disables_and_resets(app):
    from tests.console.conftest import GOOD, login

    admin = admin_client(app)
    csrf = get_csrf(admin, "/console/users")
    resp = admin.post("/console/users", data={"csrf": csrf, "name": "newbie", "role": "analyst"})
    link = re.search(r'id="enrol-link">([^<]+)<', resp.text).group(1)
    token = link.rsplit("/", 1)[1]
    person = browser(app)
    page_csrf = get_csrf(person, f"/console/enrol/{token}")
    assert person.post(f"/console/enrol/{token}", data={"csrf": page_csrf, "password": GOOD,
                                                        "password2": GOOD}).status_code == 303
    assert person.get("/console/jobs").status_code == 200
    with session_scope() as session:
        from secops.db.console_models import User

        newbie = session.scalar(select(User).where(User.name == "newbie")).id
        me = session.scalar(select(User).where(User.name == "root")).id
    assert admin.post(f"/console/users/{newbie}/disable", data={"csrf": csrf}).status_code == 303
    assert person.get("/console/jobs").headers["location"] == "/console/login"
    assert login(browser(app), "newbie").status_code == 401
    assert admin.post(f"/console/users/{newbie}/enable", data={"csrf": csrf}).status_code == 303
    assert login(browser(app), "newbie").status_code == 303
    resp = admin.post(f"/console/users/{newbie}/reset-password", data={"csrf": csrf})
    assert "/console/enrol/" in re.search(r'id="enrol-link">([^<]+)<', resp.text).group(1)
    assert login(browser(app), "newbie").status_code == 401  # the password is gone
    own = admin.post(f"/console/users/{me}/disable", data={"csrf": csrf})
    assert own.status_code == 409
    with session_scope() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).where(
            AuditEntry.action.like("users.%")).order_by(AuditEntry.seq))]
    assert actions == ["users.create", "users.enrol", "users.totp_added",  # the admin
                       "users.create", "users.enrol", "users.disable", "users.enable",
                       "users.reset_factors"]
