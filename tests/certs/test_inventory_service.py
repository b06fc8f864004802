"""The inventory's scan recording on SQLite and PostgreSQL: history, change detection,
findings to events and alerts once per threshold, gauges."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select

from secops.certs import Checker
from secops.db.models import Alert, CertSeen, Job, SecurityEvent
from secops.db.session import session_scope
from secops.errors import Conflict, InvalidInput
from secops.services import cert_scans, certs, metrics
from tests.certs.pki import Pki, now
from tests.certs.servers import PlaintextServer, TlsServer


def _scan(checker: Checker, kv: redis.Redis) -> dict:
    with session_scope() as session:
        job = Job(kind="certs.scan", params={}, status="running", attempts=1, submitted_by="tests")
        plan = cert_scans.plan_scan(session=session, job=job)
    results = cert_scans.execute_scan(plan, checker=checker)
    with session_scope() as session:
        return cert_scans.record_scan(session=session, results=results, kv=kv).summary


def _alerts() -> list[tuple[str, str]]:
    with session_scope() as session:
        return sorted((a.rule, a.subject) for a in session.scalars(select(Alert)))


def test_scan_history_changes_and_deduplicated_alerts(platform_env, pki: Pki, root_file: str) -> None:
    kv = redis.Redis.from_url(platform_env["SECOPS_REDIS_URL"])
    t = now()
    first = pki.leaf(not_before=t - timedelta(days=80), not_after=t + timedelta(days=10))
    checker = Checker(ca_file=root_file, timeout=1, workers=4)
    with TlsServer(first, (pki.intermediate,)) as server, PlaintextServer() as plain:
        with session_scope() as session:
            good = certs.add_endpoint(session=session, host="127.0.0.1", port=server.port, sni=None,
                                      owner="web-team", tags=["prod"], pins=[], created_by="tests")
            certs.add_endpoint(session=session, host="127.0.0.1", port=plain.port, sni=None,
                               owner=None, tags=[], pins=[], created_by="tests")
            good_id, good_key = good.id, good.key
        with session_scope() as session, pytest.raises(Conflict):
            certs.add_endpoint(session=session, host="127.0.0.1", port=server.port, sni=None,
                               owner=None, tags=[], pins=[], created_by="tests")
        with session_scope() as session, pytest.raises(InvalidInput):
            certs.add_endpoint(session=session, host="bad host!", port=443, sni=None, owner=None,
                               tags=[], pins=[], created_by="tests")

        summary = _scan(checker, kv)
        assert summary == {"targets": 2, "certificates": 1, "errors": 1, "findings": 3,
                           "changes": 1, "events": 4}
        # expiring (medium, 10 days), renewal_due (low: 80 of 90 days), unreachable (high)
        assert _alerts() == sorted([
            ("certs.medium", f"{good_key}|cert.expiring|{hashlib.sha256(first.der).hexdigest()[:16]}"),
            ("certs.low", f"{good_key}|cert.renewal_due|{hashlib.sha256(first.der).hexdigest()[:16]}"),
            ("certs.high", f"127.0.0.1:{plain.port}|tls.unreachable|"),
        ])
        # the same state again: no new event, no new alert
        assert _scan(checker, kv)["events"] == 0
        assert len(_alerts()) == 3

        # a replacement with a new key and no later expiry: key_changed (high alert)
        sneaky = pki.leaf(not_before=t - timedelta(days=1), not_after=t + timedelta(days=9))
        server.serve_certificate(sneaky, (pki.intermediate,))
        summary = _scan(checker, kv)
        assert summary["changes"] == 1
        # the new certificate's own findings alert again (a new certificate, new thresholds)
        rules = [r for r, _ in _alerts()]
        assert rules.count("certs.high") == 2 and rules.count("certs.medium") == 2

        # a proper renewal: later expiry
        renewed = pki.leaf(not_after=t + timedelta(days=89))
        server.serve_certificate(renewed, (pki.intermediate,))
        assert _scan(checker, kv)["changes"] == 1

    with session_scope() as session:
        rows = certs.history(session=session, target_id=good_id)
        assert [(r.fingerprint, r.change, r.current) for r in rows] == [
            (hashlib.sha256(renewed.der).hexdigest(), "renewed", True),
            (hashlib.sha256(sneaky.der).hexdigest(), "key_changed", False),
            (hashlib.sha256(first.der).hexdigest(), "first_seen", False),
        ]
        changes = session.scalars(select(SecurityEvent.details).where(
            SecurityEvent.kind == "cert.changed")).all()
        assert sorted(c["change"] for c in changes) == ["first_seen", "key_changed", "renewed"]
        assert session.scalar(select(func.count()).select_from(CertSeen)) == 3
        text = metrics.render(session=session, kv=None).decode()
    gauges = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("secops_cert_")}
    expires = (t + timedelta(days=89)).timestamp()
    assert gauges[f'secops_cert_not_after_seconds{{target="{good_key}"}}'] == expires
    assert abs(gauges[f'secops_cert_days_left{{target="{good_key}"}}'] - 89.0) < 0.01
    assert len(gauges) == 2  # the unreachable endpoint served nothing


def test_listing_pages_targets_with_their_chains_in_one_query(platform_env, pki: Pki,
                                                              root_file: str) -> None:
    """The endpoint list pages in SQL and loads every listed target's current chain with
    one query, whatever the page size; each target gets exactly its own chain."""
    from fastapi.testclient import TestClient
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from secops.api.app import create_app
    from tests.factories import auth, make_key

    kv = redis.Redis.from_url(platform_env["SECOPS_REDIS_URL"])
    leaves = [pki.leaf(not_after=now() + timedelta(days=60 + i)) for i in range(3)]
    checker = Checker(ca_file=root_file, timeout=1, workers=4)
    with TlsServer(leaves[0], (pki.intermediate,)) as a, \
            TlsServer(leaves[1], (pki.intermediate,)) as b, \
            TlsServer(leaves[2], (pki.intermediate,)) as c:
        servers = [a, b, c]
        with session_scope() as session:
            for server in servers:
                certs.add_endpoint(session=session, host="127.0.0.1", port=server.port, sni=None,
                                   owner=None, tags=[], pins=[], created_by="tests")
        assert _scan(checker, kv)["certificates"] == 3  # an endpoint's leaf
    expected = {f"127.0.0.1:{s.port}": [hashlib.sha256(leaf.der).hexdigest()]
                for s, leaf in zip(servers, leaves, strict=True)}
    keys = sorted(expected)

    client = TestClient(create_app(), raise_server_exceptions=False)
    headers = auth(make_key("analyst"))
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if "cert_seen" in statement:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)  # the read engine's too
    try:
        whole = client.get("/v1/certs/endpoints", headers=headers).json()
        page = client.get("/v1/certs/endpoints?limit=2&offset=1", headers=headers).json()
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one per listing, not one per target
    assert [i["key"] for i in whole["items"]] == keys and whole["total"] == 3
    assert {i["key"]: [c["fingerprint"] for c in i["certificates"]]
            for i in whole["items"]} == expected
    assert all(c["target"] == i["key"] for i in whole["items"] for c in i["certificates"])
    assert [i["key"] for i in page["items"]] == keys[1:] and page["total"] == 3
