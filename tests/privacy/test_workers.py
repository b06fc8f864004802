"""Erasure sub-jobs on real worker processes, over a map with two stores (two SQLite
files): in parallel, and with a worker killed mid-erasure."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.db.models import Job, PrivacyRequest
from secops.db.session import session_scope
from secops.privacy.receipt import verify
from tests.factories import auth, make_key, stored
from tests.privacy import shop
from tests.processes import start_worker, wait_for

pytestmark = pytest.mark.integration


def _job(key: str) -> Job:
    return stored(Job, key)


def _request(key: str) -> PrivacyRequest:
    return stored(PrivacyRequest, key)


CRM = """\
  crm:
    url: {url}
    tables:
      contacts:
        primary_key: id
        identities: {{email: email}}
        erase: delete
        fields:
          email: {{category: contact, erase: hash}}
          note: {{category: free_text, erase: redact}}
"""


def _two_stores(tmp_path: Path) -> Path:
    """A second store, a CRM in its own SQLite file, next to the shop; the map names both."""
    crm = tmp_path / "crm.db"
    conn = sqlite3.connect(crm)
    with conn:
        conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, note TEXT)")
        conn.executemany("INSERT INTO contacts VALUES (?, ?, ?)", [
            (1, shop.ALICE_EMAIL, "met at the fair"), (2, "carol@example.com", "reseller"),
            (3, shop.ALICE_EMAIL, "asked for a catalogue")])
    conn.close()
    map_path = tmp_path / "shop.yaml"
    text = map_path.read_text(encoding="utf-8")
    crm_store = CRM.format(url=f"sqlite:///{crm}")
    map_path.write_text(text.replace("processing:\n", crm_store + "processing:\n", 1), encoding="utf-8")
    return crm


def _crm_ids(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM contacts ORDER BY id")]
    finally:
        conn.close()


def _alice_email(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT email FROM users WHERE id = 1").fetchone()[0])
    finally:
        conn.close()


def _blob_files() -> list[Path]:
    """Every file in the platform's file store (parts, bundles)."""
    from secops.config import get_settings

    return sorted(p for p in (get_settings().data_dir / "blobs").rglob("*") if p.is_file())


def _submit_verified(client: TestClient, key: str, box, type: str = "erasure") -> tuple[str, str]:
    created = client.post(
        "/v1/privacy/requests",
        json={"type": type, "identities": {"email": shop.ALICE_EMAIL},
              "contact_email": "alice.private@example.net"},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]},
                           headers=auth(key))
    assert verified.status_code == 202, verified.text
    if type == "access":
        return rid, verified.json()["job_id"] + " " + verified.json()["download_token"]
    return rid, verified.json()["job_id"]


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_export_sub_jobs_in_parallel_bundle_both_stores(privacy_platform, tmp_path):
    _two_stores(tmp_path)
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    worker = start_worker(privacy_platform["env"], tmp_path / "w.log", concurrency=2)
    try:
        rid, both = _submit_verified(client, key, privacy_platform["mailbox"], "access")
        parent_id, token = both.split(" ")
        wait_for(lambda: _request(rid).status != "in_progress", 90, "request done", 0.1)
        # the parts go after the completing sub-job's commit: wait for that, not for longer
        wait_for(lambda: len(_blob_files()) == 1, 30, "parts deleted", 0.1)
    finally:
        worker.stop()
    parent = _job(parent_id)
    assert parent.status == "succeeded" and parent.result is not None
    sub_jobs = parent.result["sub_jobs"]
    assert list(sub_jobs) == ["shop", "crm"]
    parts = {}
    for store, sub_id in sub_jobs.items():
        sub = _job(sub_id)
        assert (sub.kind, sub.status) == ("privacy.export_store", "succeeded") and sub.result is not None
        parts[store] = sub.result["part_sha256"]
    assert _job(sub_jobs["crm"]).result["records"] == 2  # type: ignore[index]
    req = _request(rid)
    assert req.status == "completed" and req.result is not None
    assert req.result["records"] == 17 + 2 and req.result["sub_jobs"] == sub_jobs
    from secops.config import get_settings
    from secops.services.storage import get_store

    blobs = get_store(get_settings())
    assert [blobs.locate(sha) for sha in parts.values()] == [None, None]  # parts deleted
    bundle = client.get(f"/v1/privacy/requests/{rid}/bundle",
                        headers={**auth(key), "X-Download-Token": token})
    assert bundle.status_code == 200, bundle.text
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
        names = set(zf.namelist())
        contacts = json.loads(zf.read("crm/contacts.json"))
    assert {"shop/users.json", "crm/contacts.json", "crm/contacts.csv"} <= names
    assert sorted((c["id"], c["note"]) for c in contacts) == [
        (1, "met at the fair"), (3, "asked for a catalogue")]


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_erasure_sub_jobs_in_parallel_complete_the_request_over_both_stores(privacy_platform, tmp_path):
    crm_file = _two_stores(tmp_path)
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    box = privacy_platform["mailbox"]
    worker = start_worker(privacy_platform["env"], tmp_path / "w.log", concurrency=2)
    try:
        # first a rectification over both stores: one rectify_store sub-job per store it names
        created = client.post("/v1/privacy/requests", headers=auth(key), json={
            "type": "rectification", "identities": {"email": shop.ALICE_EMAIL},
            "contact_email": "alice.private@example.net",
            "rectification": {"shop.users.name": "Alice P. Liddell", "crm.contacts.note": "met twice"}})
        assert created.status_code == 201, created.text
        fixed = created.json()["id"]
        verified = client.post(f"/v1/privacy/requests/{fixed}/verify", json={"code": box.codes()[-1]},
                               headers=auth(key))
        assert verified.status_code == 202, verified.text
        wait_for(lambda: _request(fixed).status != "in_progress", 60, "rectification done", 0.1)
        conn = sqlite3.connect(crm_file)
        notes = sorted(conn.execute("SELECT id, note FROM contacts").fetchall())
        conn.close()
        assert notes == [(1, "met twice"), (2, "reseller"), (3, "met twice")]
        with privacy_platform["engine"].connect() as c:
            names = dict(c.execute(sa.select(shop.users.c.id, shop.users.c.name)).all())
        assert names == {1: "Alice P. Liddell", 2: "Bob Stone", 3: "Carol Jones"}

        rid, parent_id = _submit_verified(client, key, box)
        wait_for(lambda: _request(rid).status != "in_progress", 90, "request done", 0.1)
    finally:
        worker.stop()
    rectified = _request(fixed)
    assert rectified.status == "completed" and rectified.result is not None
    rect_jobs = rectified.result["sub_jobs"]
    assert list(rect_jobs) == ["shop", "crm"]
    assert [(_job(j).kind, _job(j).status) for j in rect_jobs.values()] == [
        ("privacy.rectify_store", "succeeded")] * 2
    assert rectified.result["changes"] == [
        {"store": "shop", "table": "users", "column": "name", "rows": 1},
        {"store": "crm", "table": "contacts", "column": "note", "rows": 2}]
    assert rectified.result["recipients_to_notify"] == ["carrier"]
    parent = _job(parent_id)
    assert parent.status == "succeeded" and parent.result is not None
    sub_jobs = parent.result["sub_jobs"]
    assert list(sub_jobs) == ["shop", "crm"] and len(set(sub_jobs.values())) == 2
    for store, sub_id in sub_jobs.items():
        sub = _job(sub_id)
        assert (sub.kind, sub.status, sub.params) == (
            "privacy.erase_store", "succeeded", {"request_id": rid, "store": store})
        assert sub.result is not None and sub.result["store"] == store and sub.result["remaining"] == {}
    req = _request(rid)
    assert req.status == "completed" and req.result is not None and req.result["verified"] is True
    body = verify(req.result["receipt"], privacy_platform["signing"].public_key())
    assert [s["store"] for s in body["stores"]] == ["shop", "crm"]
    assert body["verification"] == {"verified": True, "remaining": []}
    assert {a["store"] for a in body["actions"]} == {"shop", "crm"}
    assert _crm_ids(crm_file) == [2]
    assert _alice_email(tmp_path / "shop.db").startswith("hmac:")
    # submittable through /v1/jobs? no: the sub-job kind is internal
    resp = client.post("/v1/jobs", json={"kind": "privacy.erase_store",
                                         "params": {"request_id": rid, "store": "shop"}}, headers=auth(key))
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_worker_killed_mid_erasure_and_request_completes_on_new_worker(privacy_platform, tmp_path):
    box = privacy_platform["mailbox"]
    shop_file = tmp_path / "shop.db"
    crm_file = _two_stores(tmp_path)
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    created = client.post(
        "/v1/privacy/requests",
        json={"type": "erasure", "identities": {"email": shop.ALICE_EMAIL},
              "contact_email": "alice.private@example.net"},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    # The test holds an exclusive lock on the shop's SQLite file: the erasure blocks on it
    # (SQLite's busy wait) while the worker is killed.
    lock = sqlite3.connect(shop_file, timeout=0, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    first = start_worker(privacy_platform["env"], tmp_path / "w1.log", name="w1")
    try:
        verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]},
                               headers=auth(key))
        assert verified.status_code == 202, verified.text
        parent_id = verified.json()["job_id"]
        wait_for(lambda: _job(parent_id).status == "succeeded", 30, "fan-out done", 0.05)
        sub_jobs = _job(parent_id).result["sub_jobs"]  # type: ignore[index]
        assert list(sub_jobs) == ["shop", "crm"]
        job_id = sub_jobs["shop"]
        wait_for(lambda: _job(job_id).status == "running", 30, "shop sub-job running", 0.05)
        first.kill()  # SIGKILL the whole worker while the shop sub-job waits on its store
    finally:
        first.stop()
    assert _job(job_id).status == "running"
    assert _request(rid).status == "in_progress"
    # nothing was erased: the lock was held throughout the first worker's life
    assert _crm_ids(crm_file) == [1, 2, 3]
    assert lock.execute("SELECT email FROM users WHERE id = 1").fetchone()[0] == shop.ALICE_EMAIL
    lock.execute("ROLLBACK")
    lock.close()

    second = start_worker(privacy_platform["env"], tmp_path / "w2.log", name="w2")
    try:
        wait_for(lambda: _job(job_id).status in ("succeeded", "failed"), 90, "erase job final", 0.2)
    finally:
        second.stop()
    job = _job(job_id)
    assert job.status == "succeeded", job.error
    assert job.attempts >= 2  # the killed delivery counted, then a new worker took over
    wait_for(lambda: _request(rid).status != "in_progress", 60, "request done", 0.2)
    crm_job = _job(sub_jobs["crm"])
    assert crm_job.status == "succeeded" and crm_job.result is not None
    assert crm_job.result["remaining"] == {} and crm_job.result["status"] == "committed"
    req = _request(rid)
    assert req.status == "completed" and req.result is not None and req.result["verified"] is True
    assert req.result["sub_jobs"] == sub_jobs and req.sealed is None
    body = verify(req.result["receipt"], privacy_platform["signing"].public_key())
    assert body["verification"] == {"verified": True, "remaining": []}
    assert body["stores"] == [
        {"store": "shop", "status": "committed", "error": None, "verify_error": None},
        {"store": "crm", "status": "committed", "error": None, "verify_error": None},
    ]
    assert [a for a in body["actions"] if a["store"] == "crm"] == [
        {"store": "crm", "table": "contacts", "strategy": "delete", "rows": 2, "columns": [],
         "legal_hold": False}]
    assert _crm_ids(crm_file) == [2]
    expected = "hmac:" + hmac.new(privacy_platform["hmac"], shop.ALICE_EMAIL.encode(),
                                  hashlib.sha256).hexdigest()[:32]
    assert _alice_email(shop_file) == expected
    with privacy_platform["engine"].connect() as conn:
        assert sorted(conn.execute(sa.select(shop.newsletter.c.id)).scalars()) == [41, 42]


def _post(client: TestClient, key: str, path: str):
    return client.post(path, headers=auth(key))


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_a_store_that_fails_for_good_fails_the_request_and_a_retry_completes_it(privacy_platform, tmp_path):
    """The CRM file is not a database: its export and erasure sub-jobs fail at once (no
    retry mends that), the requests fail with the store and reason, an alert is raised,
    no export part is left; once the file is back, a retry completes both requests."""
    from secops.db.models import Alert, SecurityEvent

    box = privacy_platform["mailbox"]
    crm_file = _two_stores(tmp_path)
    good = crm_file.read_bytes()
    crm_file.write_bytes(b"this is not a database " * 200)
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    worker = start_worker(privacy_platform["env"], tmp_path / "w.log", concurrency=2)
    try:
        access, both = _submit_verified(client, key, box, "access")
        token = both.split(" ")[1]
        erasure, _ = _submit_verified(client, key, box, "erasure")
        for rid in (access, erasure):
            wait_for(lambda rid=rid: _request(rid).status != "in_progress", 60, "request final", 0.1)
            req = _request(rid)
            assert req.status == "failed" and req.result is not None, (req.status, req.result)
            sub_jobs = req.result["sub_jobs"]
            wait_for(lambda sj=sub_jobs: all(_job(j).status in ("succeeded", "failed") for j in sj.values()),
                     30, "sub-jobs final", 0.1)
            crm_job = _job(sub_jobs["crm"])
            assert crm_job.status == "failed" and crm_job.attempts == 1  # failed for good at once
            failure = req.result["failure"]
            assert (failure["store"], failure["job_id"]) == ("crm", crm_job.id)
            assert failure["reason"] == crm_job.error
            assert "file is not a database" in failure["reason"] and "crm" in failure["reason"]
            assert req.sealed is not None  # kept for a retry
            assert req.history[-1]["to"] == "failed"
        # the shop's erasure committed and is kept; the shop's export part is deleted
        assert _alice_email(tmp_path / "shop.db").startswith("hmac:")
        wait_for(lambda: _blob_files() == [], 30, "orphaned parts deleted", 0.1)
        with session_scope() as s:
            events = s.scalars(sa.select(SecurityEvent).where(
                SecurityEvent.kind == "privacy.request_failed")).all()
            assert sorted((e.details["request_id"], e.details["store"]) for e in events) == sorted(
                [(access, "crm"), (erasure, "crm")])
            alerts = s.scalars(sa.select(Alert).where(Alert.rule == "privacy.request_failed")).all()
            assert len(alerts) == 2 and {a.severity for a in alerts} == {"high"}
        # a failed request is not downloadable and cannot be closed as completed
        assert client.get(f"/v1/privacy/requests/{access}/bundle",
                          headers={**auth(key), "X-Download-Token": token}).status_code == 409

        crm_file.write_bytes(good)  # the operator restores the store
        for rid in (access, erasure):
            retried = _post(client, key, f"/v1/privacy/requests/{rid}/retry")
            assert retried.status_code == 202, retried.text
            assert retried.json()["status"] == "in_progress"
        for rid in (access, erasure):
            wait_for(lambda rid=rid: _request(rid).status != "in_progress", 60, "retried request final", 0.1)
        wait_for(lambda: len(_blob_files()) == 1, 30, "parts of the retried export deleted", 0.1)
    finally:
        worker.stop()
    done = _request(access)
    # the shop's share of the erasure had committed before the export ran again: the CRM's
    # two contacts are all that is left of Alice
    assert done.status == "completed" and done.result is not None and done.result["records"] == 2
    assert list(done.result["sub_jobs"]) == ["shop", "crm"]
    erased = _request(erasure)
    assert erased.status == "completed" and erased.result is not None and erased.result["verified"] is True
    body = verify(erased.result["receipt"], privacy_platform["signing"].public_key())
    assert [s["store"] for s in body["stores"]] == ["shop", "crm"]
    # the shop's counts come from its first (and only) committed run
    assert [(a["table"], a["rows"]) for a in body["actions"] if a["table"] in ("users", "contacts")] == [
        ("users", 1), ("users", 1), ("contacts", 2)]
    assert _crm_ids(crm_file) == [2]
    assert [h["to"] for h in erased.history][-3:] == ["failed", "in_progress", "completed"]
    again = _post(client, key, f"/v1/privacy/requests/{erasure}/retry")
    assert again.status_code == 409, again.text
    bundle = client.get(f"/v1/privacy/requests/{access}/bundle",
                        headers={**auth(key), "X-Download-Token": token})
    assert bundle.status_code == 200, bundle.text
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as zf:
        contacts = json.loads(zf.read("crm/contacts.json"))
    assert sorted(c["id"] for c in contacts) == [1, 3]


def _erased_rows(before: dict[str, dict], after: dict[str, dict]) -> dict[str, int]:
    """Independent count of what an erasure did: per table, rows deleted or rewritten."""
    out = {}
    for table, rows in before.items():
        n = sum(1 for pk, row in rows.items() if after[table].get(pk) != row)
        if n:
            out[table] = n
    return out


def _crm_rows(path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(path)
    try:
        return {"contacts": {r[0]: r for r in conn.execute("SELECT id, email, note FROM contacts")}}
    finally:
        conn.close()


@pytest.mark.parametrize("platform_env", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
def test_sub_jobs_on_a_postgresql_platform_finish_together_and_count_exactly_after_a_takeover(
        privacy_platform, tmp_path):
    """Two workers on a PostgreSQL platform database. The test holds the request's row in
    KEY SHARE mode, which lets the fan-out update it but stops each sub-job where it takes
    the row lock to complete the request, after its store committed.

    Alice: both sub-jobs wait there, then go at once: one receipt, completed once.
    Bob: both wait there, the worker of one is killed, the other finishes; the killed
    sub-job runs again on the surviving worker, finds nothing left to erase, and the
    receipt still counts what its first run committed, exactly."""
    from sqlalchemy.engine import make_url

    from secops.db.models import AuditEntry, SecurityEvent

    box = privacy_platform["mailbox"]
    crm_file = _two_stores(tmp_path)
    with sqlite3.connect(crm_file) as conn:
        conn.execute("INSERT INTO contacts VALUES (4, 'bob@example.org', 'prefers the phone')")
    url = make_url(privacy_platform["env"]["SECOPS_DATABASE_URL"])
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    pg = sa.create_engine(url)
    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")

    def submit(email: str) -> str:
        created = client.post("/v1/privacy/requests", headers=auth(key), json={
            "type": "erasure", "identities": {"email": email}, "contact_email": "subject@example.net"})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def hold(rid: str) -> sa.Connection:
        conn = pg.connect()
        conn.execute(sa.text("SELECT id FROM privacy_requests WHERE id = :id FOR KEY SHARE"), {"id": rid})
        return conn

    def verify_code(rid: str) -> None:
        verified = client.post(f"/v1/privacy/requests/{rid}/verify", json={"code": box.codes()[-1]},
                               headers=auth(key))
        assert verified.status_code == 202, verified.text

    def waiting_on_locks() -> int:
        with pg.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one())

    def records(rid: str) -> int:
        with pg.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM privacy_store_erasures "
                                            "WHERE request_id = :id"), {"id": rid}).scalar_one())

    w1 = start_worker(privacy_platform["env"], tmp_path / "w1.log", name="w1")
    w2 = start_worker(privacy_platform["env"], tmp_path / "w2.log", name="w2")
    try:
        alice = submit(shop.ALICE_EMAIL)
        lock = hold(alice)
        verify_code(alice)
        wait_for(lambda: waiting_on_locks() == 2 and records(alice) == 2, 30, "both at the lock", 0.05)
        lock.close()  # both go at once
        wait_for(lambda: _request(alice).status != "in_progress", 30, "alice done", 0.05)

        before = {**shop.dump(privacy_platform["engine"]), **_crm_rows(crm_file)}
        bob = submit("bob@example.org")
        lock = hold(bob)
        verify_code(bob)
        wait_for(lambda: waiting_on_locks() == 2 and records(bob) == 2, 30, "both at the lock", 0.05)
        committed = {**shop.dump(privacy_platform["engine"]), **_crm_rows(crm_file)}
        w1.kill()  # one sub-job dies after its store committed, before its job did
        lock.close()
        wait_for(lambda: _request(bob).status != "in_progress", 60, "bob done after a takeover", 0.2)
    finally:
        w1.stop()
        w2.stop()
    after = {**shop.dump(privacy_platform["engine"]), **_crm_rows(crm_file)}
    assert committed == after  # the run that took over erased nothing more
    expected = _erased_rows(before, after)
    assert expected["contacts"] == 1 and expected["users"] == 1

    done = _request(alice)
    assert done.status == "completed" and done.result is not None and done.result["verified"] is True
    assert [h["to"] for h in done.history].count("completed") == 1
    with session_scope() as s:
        events = s.scalars(sa.select(SecurityEvent).where(SecurityEvent.kind == "privacy.erasure")).all()
        assert sorted(e.details["request_id"] for e in events) == sorted([alice, bob])
        completions = s.scalars(sa.select(AuditEntry.target).where(
            AuditEntry.action == "privacy.request.completed")).all()
        assert sorted(completions) == sorted([f"privacy_request:{alice}", f"privacy_request:{bob}"])
        assert s.scalar(sa.select(sa.func.count()).select_from(sa.table("privacy_store_erasures"))) == 0

    req = _request(bob)
    assert req.status == "completed" and req.result is not None and req.result["verified"] is True
    sub_jobs = req.result["sub_jobs"]
    attempts = sorted(_job(j).attempts for j in sub_jobs.values())
    assert attempts[0] == 1 and attempts[1] >= 2  # one sub-job was taken over
    body = verify(req.result["receipt"], privacy_platform["signing"].public_key())
    # every strategy of a table counts that table's rows
    assert {a["table"]: a["rows"] for a in body["actions"]} == expected
    assert all(a["rows"] == expected[a["table"]] for a in body["actions"])
    pg.dispose()


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_a_retry_waits_until_every_sub_job_has_ended(privacy_platform):
    """A failed erasure whose other sub-job still runs is refused with 409 and left as it
    was; once that sub-job has ended, the retry runs the failed store again only."""
    from datetime import timedelta

    from secops.db.base import utcnow

    client, key = TestClient(create_app(), raise_server_exceptions=False), make_key("analyst")
    with session_scope() as s:
        parent = Job(kind="privacy.erase", params={}, status="failed", attempts=1,
                     submitted_by="key:test")
        shop = Job(kind="privacy.erase_store", params={}, status="succeeded", attempts=1,
                   submitted_by="key:test")
        crm = Job(kind="privacy.erase_store", params={}, status="running", attempts=1,
                  submitted_by="key:test")
        s.add_all([parent, shop, crm])
        s.flush()
        req = PrivacyRequest(type="erasure", status="failed", identity_hash="h" * 64,
                             identity_types=["email"], sealed="sealed", submitted_by="key:test",
                             due_at=utcnow() + timedelta(days=30), job_id=parent.id,
                             result={"sub_jobs": {"shop": shop.id, "crm": crm.id},
                                     "failure": {"store": "crm"}})
        s.add(req)
        s.flush()
        rid, crm_id, shop_id = req.id, crm.id, shop.id
    refused = _post(client, key, f"/v1/privacy/requests/{rid}/retry")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == ("a sub-job of the request is still queued or running; "
                                        "retry once it ends")
    unchanged = _request(rid)
    assert unchanged.status == "failed"
    assert unchanged.result["sub_jobs"] == {"shop": shop_id, "crm": crm_id}
    with session_scope() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Job)) == 3  # nothing new
        s.execute(sa.update(Job).where(Job.id == crm_id).values(status="failed"))
    retried = _post(client, key, f"/v1/privacy/requests/{rid}/retry")
    assert retried.status_code == 202, retried.text
    after = _request(rid)
    assert after.status == "in_progress"
    assert after.result["sub_jobs"]["shop"] == shop_id  # its erasure stands
    assert after.result["sub_jobs"]["crm"] != crm_id  # a new sub-job for the failed store
    assert _job(after.result["sub_jobs"]["crm"]).status == "queued"
