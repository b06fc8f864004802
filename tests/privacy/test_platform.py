"""Access and erasure requests end to end: API and worker processes, real SMTP, a SQLite shop."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import zipfile

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from secops.db.models import PrivacyRequest, SecurityEvent
from secops.db.session import session_scope
from secops.privacy.receipt import verify
from tests.factories import auth, make_key
from tests.platform.helpers import platform, wait_job
from tests.privacy import shop
from tests.processes import wait_for

pytestmark = pytest.mark.integration
CONTACT = "alice.private@example.net"


def _json(value):
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_access_and_erasure_requests_through_a_worker(privacy_platform, tmp_path, monkeypatch):
    box = privacy_platform["mailbox"]
    with platform(privacy_platform["env"], tmp_path, monkeypatch) as url:
        key = make_key("analyst")
        client = httpx.Client(base_url=url, headers=auth(key), timeout=30)

        req = client.post(
            "/v1/privacy/requests",
            json={"type": "portability", "identities": {"email": shop.ALICE_EMAIL}, "contact_email": CONTACT},
        )
        assert req.status_code == 201, req.text
        rid = req.json()["id"]
        verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]})
        assert verified.status_code == 202, verified.text
        token = verified.json()["download_token"]
        job = wait_job(client, verified.json()["job_id"])
        assert job["status"] == "succeeded", job
        assert list(job["result"]["sub_jobs"]) == ["shop"]  # one sub-job per store of the map
        wait_for(lambda: client.get(f"/v1/privacy/requests/{rid}").json()["status"] != "in_progress",
                 60, "export request done", 0.1)
        done = client.get(f"/v1/privacy/requests/{rid}").json()
        assert done["status"] == "completed" and done["bundle_ready"] is True
        # Alice by e-mail: users 1, addresses 10-11, orders 100-101, items 1000-1002, return 5000,
        # tickets 200-201, messages 300-302, newsletter 40, events 60-61 (62 has no user)
        assert done["result"]["records"] == 17 and done["result"]["files"] == 9

        bundle = client.get(f"/v1/privacy/requests/{rid}/bundle", headers={"X-Download-Token": token})
        assert bundle.status_code == 200, bundle.text
        assert bundle.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
            names = set(zf.namelist())
            tables = [
                "users",
                "addresses",
                "orders",
                "order_items",
                "returns",
                "support_tickets",
                "ticket_messages",
                "newsletter",
                "events",
            ]
            assert names == {"manifest.json"} | {f"shop/{t}.{ext}" for t in tables for ext in ("json", "csv")}
            users = json.loads(zf.read("shop/users.json"))
            assert users == [{k: _json(v) for k, v in shop.SEED["users"][0].items()}]
            assert zf.read("shop/addresses.csv").decode().splitlines() == [
                "id,user_id,street,city,country",
                "10,1,1 Rabbit Hole,Oxford,GB",
                "11,1,2 Looking Glass Lane,London,GB",
            ]
            manifest = json.loads(zf.read("manifest.json"))
        assert [p["purpose"] for p in manifest["processing"]] == [
            "order fulfilment",
            "newsletter",
            "fraud prevention",
        ]
        assert manifest["processing"][0]["recipients"] == ["carrier"]
        # Bob's lawyer's address in Alice's message is someone else's data; her own IPs are not
        assert [(f["file"], f["type"]) for f in manifest["third_party_findings"]] == [
            ("shop/ticket_messages.json", "email")
        ]
        assert "bob.lawyer@example.org" not in json.dumps(manifest)
        again = client.get(f"/v1/privacy/requests/{rid}/bundle", headers={"X-Download-Token": token})
        assert again.status_code == 404  # once only
        wrong = client.get(f"/v1/privacy/requests/{rid}/bundle", headers={"X-Download-Token": "x" * 43})
        assert wrong.status_code == 404
        with session_scope() as s:
            stored = s.get(PrivacyRequest, rid)
            assert stored is not None and stored.sealed is None and stored.downloaded_at is not None

        # erasure
        req = client.post(
            "/v1/privacy/requests",
            json={"type": "erasure", "identities": {"email": shop.ALICE_EMAIL}, "contact_email": CONTACT},
        )
        rid = req.json()["id"]
        verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]})
        job = wait_job(client, verified.json()["job_id"])
        assert job["status"] == "succeeded", job
        assert list(job["result"]["sub_jobs"]) == ["shop"]  # one sub-job per store of the map
        wait_for(lambda: client.get(f"/v1/privacy/requests/{rid}").json()["status"] != "in_progress",
                 60, "erasure request done", 0.1)
        done = client.get(f"/v1/privacy/requests/{rid}").json()
        assert done["status"] == "completed" and done["result"]["verified"] is True
        sub = wait_job(client, done["result"]["sub_jobs"]["shop"])
        assert sub["status"] == "succeeded" and sub["params"]["store"] == "shop", sub
        receipt = done["result"]["receipt"]
        body = verify(receipt, privacy_platform["signing"].public_key())
        assert body["verification"] == {"verified": True, "remaining": []}
        assert shop.ALICE_EMAIL not in json.dumps(done)
    with privacy_platform["engine"].connect() as conn:
        email = conn.execute(sa.select(shop.users.c.email).where(shop.users.c.id == 1)).scalar()
        newsletter = conn.execute(sa.select(shop.newsletter.c.id)).scalars().all()
    expected = (
        "hmac:"
        + hmac.new(privacy_platform["hmac"], shop.ALICE_EMAIL.encode(), hashlib.sha256).hexdigest()[:32]
    )
    assert email == expected and sorted(newsletter) == [41, 42]
    with session_scope() as s:
        events = [e for e in s.scalars(select(SecurityEvent)) if e.kind == "privacy.erasure"]
        assert [(e.details["request_id"], e.details["verified"]) for e in events] == [(rid, True)]
