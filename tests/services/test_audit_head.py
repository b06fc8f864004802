"""The audit chain's head: MAC'd, never rebuilt while entries exist, anchored outside the
database by each verification; and ``audit.verify`` for admins and auditors only, one at
a time."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from secops.api.app import create_app
from secops.db.models import SecurityEvent
from secops.db.session import get_read_sessionmaker, session_scope
from secops.errors import AuditChainBroken
from secops.services import audit
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem
from tests.services.test_audit import append, sql, verify


def _head() -> tuple[int, str, str]:
    with session_scope() as s:
        row = s.execute(text("SELECT last_seq, last_hash, mac FROM audit_chain_head")).one()
        return int(row[0]), str(row[1]), str(row[2])


def _cut_to(seq: int) -> None:
    """Delete the entries after ``seq`` and point the head at entry ``seq``, in SQL."""
    sql("DELETE FROM audit_log WHERE seq > :seq", seq=seq)
    sql("UPDATE audit_chain_head SET last_seq = :seq, last_hash = "
        "(SELECT hash FROM audit_log WHERE seq = :seq)", seq=seq)


def test_truncation_with_a_rewound_head_is_caught(platform_env):
    append(6)
    assert verify().ok
    _cut_to(4)
    result = verify()
    assert not result.ok and result.first_broken is not None
    assert (result.first_broken.seq, result.first_broken.reason) == (
        4, "the chain head's MAC does not match (the head row was rewritten)")


def test_a_deleted_head_is_never_rebuilt(platform_env):
    append(3)
    sql("DELETE FROM audit_chain_head")
    try:
        append(1)
    except AuditChainBroken as exc:
        assert "chain head is missing" in exc.message
    else:
        raise AssertionError("an append rebuilt the deleted head")
    result = verify()
    assert not result.ok and result.first_broken is not None
    assert result.first_broken.reason == "chain head row is missing"
    # through the API: the audited action is refused (503) and a critical event is stored
    client = TestClient(create_app(), raise_server_exceptions=False)
    admin = make_key()  # the factory does not write to the audit log
    resp = client.post("/v1/keys", json={"name": "x", "role": "analyst"}, headers=auth(admin))
    assert_problem(resp, 503)
    with session_scope() as s:
        events = [(e.kind, e.severity) for e in s.scalars(select(SecurityEvent))]
        assert s.execute(text("SELECT count(*) FROM audit_chain_head")).scalar_one() == 0
        assert s.execute(text("SELECT count(*) FROM api_keys WHERE name = 'x'")).scalar_one() == 0
    assert events == [("audit.chain_broken", "critical")]


def test_a_restored_genuine_head_is_caught_by_the_anchor(platform_env, tmp_path):
    anchor_file = tmp_path / "outside" / "audit-anchor.jsonl"
    append(3)
    copy = _head()  # an attacker's copy of the head row (seq 3, hash, MAC)
    append(2)
    with session_scope() as s:
        assert audit.verify_anchored(session=s, anchor_file=anchor_file).ok
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert [(a["seq"], a["hash"]) for a in lines] == [(5, _head()[1])]
    assert oct(anchor_file.stat().st_mode & 0o777) == "0o600"

    sql("DELETE FROM audit_log WHERE seq > 3")
    sql("UPDATE audit_chain_head SET last_seq = :seq, last_hash = :hash, mac = :mac",
        seq=copy[0], hash=copy[1], mac=copy[2])
    assert verify().ok  # without the anchor, a genuine earlier head cannot be told apart
    with session_scope() as s:
        result = audit.verify_anchored(session=s, anchor_file=anchor_file)
    assert not result.ok and result.first_broken is not None
    assert result.first_broken.seq == 4 and "were cut off" in result.first_broken.reason
    assert len(anchor_file.read_text().splitlines()) == 1  # a broken chain is not anchored


def test_verification_in_short_read_transactions(platform_env, tmp_path, monkeypatch):
    monkeypatch.setattr(audit, "BATCH", 10)  # several batches from a few entries
    append(25)
    reader = get_read_sessionmaker()()
    try:
        result = audit.verify_anchored(session=reader, release=True,
                                       anchor_file=tmp_path / "anchor.jsonl")
        assert not reader.in_transaction()  # nothing held after the walk
    finally:
        reader.close()
    assert (result.ok, result.checked, result.head_seq) == (True, 25, 25)


def test_audit_verify_is_for_admins_and_auditors_one_at_a_time(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    analyst, auditor, admin = make_key("analyst"), make_key("auditor"), make_key("admin")
    assert_problem(client.post("/v1/jobs", json={"kind": "audit.verify"},
                               headers=auth(analyst)), 403)
    assert_problem(client.post("/v1/audit/verify", headers=auth(analyst)), 403)
    first = client.post("/v1/audit/verify", headers=auth(auditor))
    assert first.status_code == 202 and first.json()["kind"] == "audit.verify"
    body = assert_problem(client.post("/v1/jobs", json={"kind": "audit.verify"},
                                      headers=auth(admin)), 409)
    assert body["detail"] == "an audit.verify job is already queued or running"
    sql("UPDATE jobs SET status = 'succeeded' WHERE id = :id", id=first.json()["id"])
    assert client.post("/v1/jobs", json={"kind": "audit.verify"},
                       headers=auth(admin)).status_code == 202
