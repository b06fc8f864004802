"""The consent ledger (hash chain, derived state, tamper found) and the breach register."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from secops.api.app import create_app
from secops.cli.privacy import privacy
from secops.config import get_settings
from secops.db.models import Alert, AuditEntry, ConsentRecord, SecurityEvent
from secops.db.session import get_engine, session_scope
from secops.services import breaches
from tests.factories import auth, make_key
from tests.privacy import shop

ALICE = {"email": shop.ALICE_EMAIL}


@pytest.fixture
def client(privacy_platform: dict[str, Any]) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


def consent(client: TestClient, key: str, action: str, purpose: str = "newsletter", **who: str) -> Any:
    return client.post(
        "/v1/privacy/consents",
        headers=auth(key),
        json={"identities": who or ALICE, "purpose": purpose, "action": action, "source": "signup form v3"},
    )


def test_consents_are_chained_and_the_state_is_derived(client, privacy_platform):
    key = make_key("analyst")
    assert consent(client, key, "given").status_code == 201
    assert consent(client, key, "given", "fraud prevention").status_code == 201
    assert consent(client, key, "given", email="bob@example.org").status_code == 201
    assert consent(client, key, "withdrawn").status_code == 201
    bad = consent(client, key, "given", "marketing calls")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("unknown purpose 'marketing calls'")

    state = client.post(
        "/v1/privacy/consents/state", headers=auth(make_key("auditor")), json={"identities": ALICE}
    ).json()
    assert {p: s["state"] for p, s in state["purposes"].items()} == {
        "newsletter": "withdrawn",
        "fraud prevention": "given",
    }
    assert [(h["seq"], h["purpose"], h["action"]) for h in state["history"]] == [
        (1, "newsletter", "given"),
        (2, "fraud prevention", "given"),
        (4, "newsletter", "withdrawn"),
    ]
    with session_scope() as s:
        rows = list(s.scalars(select(ConsentRecord).order_by(ConsentRecord.seq)))
        assert all(shop.ALICE_EMAIL not in json.dumps([r.subject_hash, r.source]) for r in rows)
        assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
        assert (
            s.scalar(
                select(sa.func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.like("privacy.consent.%"))
            )
            == 4
        )

    runner = CliRunner()
    ok = runner.invoke(privacy, ["consents", "verify"])
    assert (ok.exit_code, ok.stdout) == (0, "ok: 4 consent entries, chain intact\n")
    with get_engine().begin() as conn:  # someone rewrites history: withdrawn -> given
        conn.execute(sa.update(ConsentRecord.__table__).where(ConsentRecord.seq == 4).values(action="given"))
    broken = runner.invoke(privacy, ["consents", "verify"])
    assert (broken.exit_code, broken.stderr) == (
        1,
        "broken: entry 4 was altered (3 entries checked before it)\n",
    )
    with get_engine().begin() as conn:
        conn.execute(
            sa.update(ConsentRecord.__table__).where(ConsentRecord.seq == 4).values(action="withdrawn")
        )
        conn.execute(sa.delete(ConsentRecord.__table__).where(ConsentRecord.seq == 2))
    removed = runner.invoke(privacy, ["consents", "verify"])
    assert (removed.exit_code, removed.stderr) == (
        1,
        "broken: entry 2 entries 2..2 are missing (1 entries checked before it)\n",
    )


def _breach(aware: dt.datetime) -> dict[str, Any]:
    return {
        "title": "Support mailbox exposed",
        "aware_at": aware.isoformat(),
        "nature": "A support mailbox was readable without login for two days.",
        "categories": ["contact", "free_text"],
        "subjects_approx": 1200,
        "records_approx": 3400,
        "consequences": "Phishing aimed at the customers concerned.",
        "measures": "Mailbox closed; passwords rotated; customers to be told.",
        "dpo_contact": "dpo@shop.example",
        "high_risk": True,
    }


def test_breach_register_clock_alerts_and_report(client, privacy_platform):
    key = make_key("analyst")
    aware = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    created = client.post("/v1/privacy/breaches", headers=auth(key), json=_breach(aware))
    assert created.status_code == 201, created.text
    b = created.json()
    assert b["notification_deadline"] == "2026-12-04T08:00:00+00:00" and b["status"] == "open"
    assert (
        client.post(
            "/v1/privacy/breaches", headers=auth(make_key("auditor")), json=_breach(aware)
        ).status_code
        == 403
    )
    future = client.post(
        "/v1/privacy/breaches",
        headers=auth(key),
        json=_breach(dt.datetime.now(dt.UTC) + dt.timedelta(days=2)),
    )
    assert future.status_code == 422 and future.json()["detail"] == "aware_at lies in the future"

    settings = get_settings()
    assert settings.privacy_breach_alert_hours == [24, 6]
    kv = redis.Redis.from_url(privacy_platform["env"]["SECOPS_REDIS_URL"])
    for hours_in in (10, 50, 52, 67, 70, 73, 80):  # hours after awareness
        with session_scope() as s:
            breaches.check_clocks(
                session=s, settings=settings, kv=kv, now=aware + dt.timedelta(hours=hours_in)
            )
    with session_scope() as s:
        events = [
            (e.kind, e.details.get("hours_left"))
            for e in s.scalars(select(SecurityEvent).order_by(SecurityEvent.id))
            if e.details.get("breach_id") == b["id"]
        ]
        assert events == [
            ("privacy.breach", None),
            ("privacy.breach_clock", 24),
            ("privacy.breach_clock", 6),
            ("privacy.breach_overdue", None),
        ]
        alerts = {a.rule: a.severity for a in s.scalars(select(Alert))}
        assert alerts == {"privacy.breach_clock": "high", "privacy.breach_overdue": "critical"}

    late = client.post(
        f"/v1/privacy/breaches/{b['id']}/notified", headers=auth(key), json={"who": "authority"}
    )
    assert late.status_code == 422
    assert late.json()["detail"] == "notified after 72 hours: give the reasons for the delay (Art 33(1))"
    done = client.post(
        f"/v1/privacy/breaches/{b['id']}/notified",
        headers=auth(key),
        json={"who": "authority", "delay_reason": "scope unclear until the forensic report"},
    )
    assert done.status_code == 200 and done.json()["status"] == "notified"
    again = client.post(
        f"/v1/privacy/breaches/{b['id']}/notified", headers=auth(key), json={"who": "authority"}
    )
    assert again.status_code == 409

    report = client.get(
        f"/v1/privacy/breaches/{b['id']}/report", headers=auth(make_key("auditor")), params={"format": "json"}
    )
    data = report.json()
    assert (data["approximate_subjects"], data["approximate_records"], data["categories"]) == (
        1200,
        3400,
        ["contact", "free_text"],
    )
    assert data["delay_reason"] == "scope unclear until the forensic report"
    md = client.get(f"/v1/privacy/breaches/{b['id']}/report", headers=auth(key)).text
    assert md.startswith("# Personal data breach notification: Support mailbox exposed\n")
    assert "- **Notify the authority by**: 2026-12-04T08:00:00+00:00" in md.splitlines()
    assert "## Measures taken or proposed" in md
