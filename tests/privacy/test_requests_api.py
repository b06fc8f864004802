"""Data subject requests through the API: one-time codes over real SMTP, states, deadlines.

Real SQLite and PostgreSQL platform databases, real Redis, a real SMTP server on loopback
(aiosmtpd). The jobs themselves run in tests/privacy/test_platform.py with a worker.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import Alert, AuditEntry, Job, PrivacyRequest, SecurityEvent
from secops.db.session import session_scope
from secops.services import privacy as service
from tests.factories import auth, make_key
from tests.privacy import shop

ALICE = {"email": shop.ALICE_EMAIL}
CONTACT = "alice.private@example.net"


@pytest.fixture
def client(privacy_platform: dict[str, Any]) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


def submit(client: TestClient, key: str, type_: str = "access", **extra: Any) -> Any:
    return client.post(
        "/v1/privacy/requests",
        headers=auth(key),
        json={"type": type_, "identities": ALICE, "contact_email": CONTACT, **extra},
    )


def audit_actions(request_id: str) -> list[str]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.target == f"privacy_request:{request_id}")
                .order_by(AuditEntry.seq)
            )
        )


def test_a_request_is_verified_by_a_mailed_code_and_queues_its_job(client, privacy_platform):
    box = privacy_platform["mailbox"]
    key = make_key("analyst")
    resp = submit(client, key)
    assert resp.status_code == 201, resp.text
    req = resp.json()
    assert req["status"] == "awaiting_verification" and req["identity_types"] == ["email"]
    assert shop.ALICE_EMAIL not in resp.text and CONTACT not in resp.text
    received = dt.datetime.fromisoformat(req["received_at"])
    due = dt.datetime.fromisoformat(req["due_at"])
    assert due == service.add_months(received, 1)  # add_months itself: test_due_dates_...
    assert len(box.messages) == 1
    message = box.messages[0]
    assert message["To"] == CONTACT and message["From"] == "privacy@shop.example"
    code = box.codes()[0]

    # a duplicate of the open request is refused and names the open one
    dup = submit(client, key)
    assert dup.status_code == 409
    assert dup.json()["detail"] == f"an open request of this type exists for this subject: {req['id']}"

    wrong = "000000" if code != "000000" else "111111"
    bad = client.post(f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": wrong})
    assert bad.status_code == 422 and bad.json()["detail"] == "the code is wrong, used or expired"

    ok = client.post(f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": code})
    assert ok.status_code == 202, ok.text
    done = ok.json()
    assert done["status"] == "in_progress" and done["job_id"] and len(done["download_token"]) >= 40
    assert [h["to"] for h in done["history"]] == ["awaiting_verification", "verified", "in_progress"]
    with session_scope() as s:
        job = s.get(Job, done["job_id"])
        assert job is not None and job.kind == "privacy.export" and job.params == {"request_id": req["id"]}
    assert redis.Redis.from_url(privacy_platform["env"]["SECOPS_REDIS_URL"]).llen("privacy") == 1
    # the token is shown once: reading the request does not show it
    assert client.get(f"/v1/privacy/requests/{req['id']}", headers=auth(key)).json()["download_token"] is None

    again = client.post(f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": code})
    assert again.status_code == 422  # single use
    assert audit_actions(req["id"]) == [
        "privacy.request.received",
        "privacy.code.sent",
        "privacy.code.failed",
        "privacy.request.verified",
        "privacy.request.in_progress",
        "privacy.code.failed",
    ]
    with session_scope() as s:
        events = list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "privacy.code_failed")))
        assert [e.details["request_id"] for e in events] == [req["id"], req["id"]]  # the wrong and the replay
        stored = s.get(PrivacyRequest, req["id"])
        assert stored is not None and shop.ALICE_EMAIL not in (stored.sealed or "")


def test_codes_void_after_too_many_tries_and_resends_are_limited(client, privacy_platform, monkeypatch):
    box = privacy_platform["mailbox"]
    key = make_key("analyst")
    req = submit(client, key, "erasure").json()
    code = box.codes()[-1]
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(get_settings().privacy_code_max_attempts):
        assert (
            client.post(
                f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": wrong}
            ).status_code
            == 422
        )
    # the right code no longer works: it is void
    assert (
        client.post(
            f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": code}
        ).status_code
        == 422
    )
    # two more codes may be sent within the hour (three in all), then no more
    for _ in range(2):
        assert client.post(f"/v1/privacy/requests/{req['id']}/code", headers=auth(key)).status_code == 200
    assert len(box.messages) == 3 and len(set(box.codes())) >= 1
    limited = client.post(f"/v1/privacy/requests/{req['id']}/code", headers=auth(key))
    assert limited.status_code == 409
    assert limited.json()["detail"] == "too many codes sent for this request; try again later"
    latest = box.codes()[-1]
    ok = client.post(f"/v1/privacy/requests/{req['id']}/verify", headers=auth(key), json={"code": latest})
    assert ok.status_code == 202 and ok.json()["download_token"] is None  # an erasure has no bundle


def test_an_expired_code_is_refused(privacy_platform):
    from secops.services.audit import AuditContext

    ctx = AuditContext(actor="key:test")
    settings = get_settings()
    with session_scope() as s:
        req = service.create_request(
            session=s, settings=settings, ctx=ctx, type="access", identities=ALICE, contact=CONTACT
        )
        code = privacy_platform["mailbox"].codes()[-1]
        later = req.received_at + dt.timedelta(seconds=settings.privacy_code_ttl + 1)
        with pytest.raises(service.InvalidInput):
            service.verify_code(session=s, settings=settings, req=req, code=code, ctx=ctx, now=later)
        assert req.code_hash is None and req.status == "awaiting_verification"


def test_due_dates_extension_and_deadline_alerts(client, privacy_platform):
    key = make_key("analyst")
    req = submit(client, key, "objection").json()
    with session_scope() as s:
        stored = s.get(PrivacyRequest, req["id"])
        assert stored is not None
        received, due = stored.received_at, stored.due_at
    assert due == service.add_months(received, 1)
    assert service.add_months(dt.datetime(2027, 1, 31, 12, tzinfo=dt.UTC), 1) == dt.datetime(
        2027, 2, 28, 12, tzinfo=dt.UTC
    )
    assert service.add_months(dt.datetime(2026, 11, 30, tzinfo=dt.UTC), 2) == dt.datetime(
        2027, 1, 30, tzinfo=dt.UTC
    )

    no_reason = client.post(
        f"/v1/privacy/requests/{req['id']}/extend", headers=auth(key), json={"reason": ""}
    )
    assert no_reason.status_code == 422
    ext = client.post(
        f"/v1/privacy/requests/{req['id']}/extend",
        headers=auth(key),
        json={"reason": "complex request across three systems"},
    )
    assert ext.status_code == 200
    assert dt.datetime.fromisoformat(ext.json()["due_at"]) == service.add_months(due, 2)
    second = client.post(
        f"/v1/privacy/requests/{req['id']}/extend", headers=auth(key), json={"reason": "again"}
    )
    assert second.status_code == 409
    assert (
        client.post(
            f"/v1/privacy/requests/{req['id']}/extend",
            headers=auth(make_key("auditor")),
            json={"reason": "x"},
        ).status_code
        == 403
    )

    kv = redis.Redis.from_url(privacy_platform["env"]["SECOPS_REDIS_URL"])
    new_due = service.add_months(due, 2)
    settings = get_settings()
    with session_scope() as s:
        early = new_due - dt.timedelta(days=settings.privacy_due_warning_days + 1)
        assert service.check_deadlines(session=s, settings=settings, kv=kv, now=early) == []
        service.check_deadlines(session=s, settings=settings, kv=kv, now=new_due - dt.timedelta(days=2))
        service.check_deadlines(session=s, settings=settings, kv=kv, now=new_due - dt.timedelta(days=1))
    with session_scope() as s:
        service.check_deadlines(session=s, settings=settings, kv=kv, now=new_due + dt.timedelta(hours=1))
        service.check_deadlines(session=s, settings=settings, kv=kv, now=new_due + dt.timedelta(days=3))
    with session_scope() as s:
        kinds = [
            e.kind
            for e in s.scalars(select(SecurityEvent).order_by(SecurityEvent.id))
            if e.details.get("request_id") == req["id"]
        ]
        assert kinds == ["privacy.request_due_soon", "privacy.request_overdue"]
        alerts = {a.rule: a for a in s.scalars(select(Alert))}
        assert alerts["privacy.request_due_soon"].subject == req["id"]
        assert alerts["privacy.request_overdue"].severity == "high"


def test_restriction_is_closed_by_hand_and_roles_are_checked(client, privacy_platform):
    box = privacy_platform["mailbox"]
    analyst, auditor, service_key = (
        make_key("analyst"),
        make_key("auditor"),
        make_key("service", kinds=["system.ping"]),
    )
    assert submit(client, auditor, "restriction").status_code == 403
    req = submit(client, service_key, "restriction").json()
    assert (
        client.get(
            f"/v1/privacy/requests/{req['id']}", headers=auth(make_key("service", kinds=["system.ping"]))
        ).status_code
        == 404
    )
    ok = client.post(
        f"/v1/privacy/requests/{req['id']}/verify", headers=auth(service_key), json={"code": box.codes()[-1]}
    )
    assert ok.status_code == 202 and ok.json()["status"] == "in_progress" and ok.json()["job_id"] is None
    closed = client.post(
        f"/v1/privacy/requests/{req['id']}/close",
        headers=auth(analyst),
        json={"outcome": "completed", "note": "processing restricted in CRM"},
    )
    assert closed.status_code == 200 and closed.json()["status"] == "completed"
    assert closed.json()["history"][-1]["note"] == "processing restricted in CRM"
    listed = client.get("/v1/privacy/requests?status=completed", headers=auth(auditor)).json()
    assert [r["id"] for r in listed] == [req["id"]]
    with session_scope() as s:
        stored = s.get(PrivacyRequest, req["id"])
        assert stored is not None and stored.sealed is None  # identities dropped when done


def test_bad_requests_are_clear_problems(client, privacy_platform):
    key = make_key("analyst")
    r = client.post(
        "/v1/privacy/requests",
        headers=auth(key),
        json={"type": "access", "identities": {"iban": "GB00"}, "contact_email": CONTACT},
    )
    assert (
        r.status_code == 422
        and r.json()["detail"] == "the map has no identity of type 'iban' (known: email, ip, phone)"
    )
    r = submit(client, key, "rectification", rectification={"shop.users.password": "x"})
    assert r.status_code == 422
    assert (
        r.json()["detail"] == "rectification field 'shop.users.password' is not a personal field of the map"
    )
    r = client.post(
        "/v1/privacy/requests",
        headers=auth(key),
        json={"type": "forget", "identities": ALICE, "contact_email": CONTACT},
    )
    assert r.status_code == 422
    assert privacy_platform["mailbox"].messages == []


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_a_bundle_nobody_downloaded_is_deleted_when_its_link_expires(privacy_platform):
    from secops.services import privacy_jobs
    from secops.services.audit import AuditContext
    from secops.services.storage import get_store

    settings = get_settings()
    store = get_store(settings)
    ctx = AuditContext(actor="key:test")
    with session_scope() as s:
        req = service.create_request(
            session=s, settings=settings, ctx=ctx, type="access", identities=ALICE, contact=CONTACT
        )
        done = service.verify_code(
            session=s, settings=settings, req=req, code=privacy_platform["mailbox"].codes()[-1], ctx=ctx
        )
        assert done.job is not None
        fanned, children = privacy_jobs.fan_out(
            session=s, settings=settings, request_id=req.id, job_id=done.job[0],
            kind=privacy_jobs.EXPORT_STORE_KIND,
        )
    assert [kind for _, kind in children] == ["privacy.export_store"]
    with session_scope() as s:  # the one store's sub-job, the last one: it builds the bundle
        part, parts = privacy_jobs.run_export_store(
            session=s, settings=settings, blobs=store, request_id=req.id, store_name="shop",
            job_id=fanned["sub_jobs"]["shop"],
        )
        stored = s.get(PrivacyRequest, req.id)
        assert stored is not None and stored.result is not None
        result, sha256, expires = stored.result, stored.bundle_sha256, stored.download_expires_at
    assert part["records"] == 17 and parts == [part["part_sha256"]]
    assert result["records"] == 17 and sha256 is not None and store.locate(sha256) is not None
    with session_scope() as s:
        assert privacy_jobs.expire_bundles(session=s, store=store, now=expires - dt.timedelta(seconds=1)) == 0
        assert privacy_jobs.expire_bundles(session=s, store=store, now=expires + dt.timedelta(seconds=1)) == 1
    assert store.locate(sha256) is None
    with session_scope() as s:
        stored = s.get(PrivacyRequest, req.id)
        assert stored is not None and stored.bundle_sha256 is None
        assert privacy_jobs.expire_bundles(session=s, store=store, now=expires + dt.timedelta(days=1)) == 0
    assert audit_actions(req.id)[-1] == "privacy.bundle.expired"


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_codes_can_go_out_through_the_signed_webhook_instead_of_smtp(privacy_platform, monkeypatch):
    """SECOPS_PRIVACY_CODE_SINK=webhook: the code is posted, signed like an alert, to a real
    HTTP server on loopback; no mail is sent; the posted code verifies the request."""
    import hashlib
    import hmac
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "whsec-privacy-" + "q" * 20  # pragma: allowlist secret
    monkeypatch.setenv("SECOPS_PRIVACY_CODE_SINK", "webhook")
    monkeypatch.setenv("SECOPS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/codes")
    monkeypatch.setenv("SECOPS_ALERT_WEBHOOK_SECRET", secret)
    monkeypatch.delenv("SECOPS_SMTP_HOST")  # not needed with the webhook
    get_settings.cache_clear()
    try:
        client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
        resp = submit(client, key, "erasure")
        assert resp.status_code == 201, resp.text
        rid = resp.json()["id"]
        assert privacy_platform["mailbox"].messages == [] and len(received) == 1
        headers, body = received[0]
        stamp, mac = headers["X-SecOps-Signature"].split(",")
        expected = hmac.new(secret.encode(), stamp.removeprefix("t=").encode() + b"." + body, hashlib.sha256)
        assert mac == "v1=" + expected.hexdigest()
        payload = json.loads(body)
        assert set(payload) == {"type", "request_id", "contact", "code", "expires_at"}
        assert (payload["type"], payload["request_id"], payload["contact"]) == ("privacy.code", rid, CONTACT)
        wrong = f"{(int(payload['code']) + 1) % 10**6:06d}"
        assert client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": wrong},
                           headers=auth(key)).status_code == 422
        verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": payload["code"]},
                               headers=auth(key))
        assert verified.status_code == 202, verified.text
        assert verified.json()["status"] == "in_progress"
    finally:
        server.shutdown()
        server.server_close()
