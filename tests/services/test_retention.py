"""Retention on SQLite and PostgreSQL: each table pruned past its setting, never what an
open alert, a quarantine or a legal hold needs; counts in the result; content removed."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import (
    Alert,
    AuditEntry,
    DlpFinding,
    DlpScan,
    IdempotencyRecord,
    Job,
    ScanFinding,
    ScanResult,
    SecurityEvent,
    StoredFile,
)
from secops.db.session import session_scope
from secops.errors import InvalidInput, NotFound
from secops.services import retention
from secops.services.audit import AuditContext
from secops.services.storage import get_store
from tests.factories import stored_file

OLD = timedelta(days=400)
CTX = AuditContext(actor="key:test")


def _scan(sha256: str, *, age: timedelta = OLD, status: str = "complete",
          job_id: str | None = None) -> str:
    when = utcnow() - age
    with session_scope() as s:
        scan = ScanResult(sha256=sha256, filename="f.bin", size=1, source="upload", status=status,
                          submitted_by="key:test", created_at=when, completed_at=when,
                          job_id=job_id)
        s.add(scan)
        s.flush()
        s.add(ScanFinding(scan_id=scan.id, rule_id="r", severity="low", description="d",
                          location=None))
        return scan.id


def _job(status: str = "succeeded", age: timedelta = OLD) -> str:
    when = utcnow() - age
    with session_scope() as s:
        job = Job(kind="system.ping", params={}, status=status, attempts=1,
                  submitted_by="key:test", created_at=when, updated_at=when,
                  finished_at=when if status != "queued" else None)
        s.add(job)
        s.flush()
        return job.id


def _dlp(sha256: str | None, age: timedelta = OLD) -> str:
    when = utcnow() - age
    with session_scope() as s:
        scan = DlpScan(source="text" if sha256 is None else "stored", sha256=sha256,
                       status="complete", submitted_by="key:test", created_at=when,
                       completed_at=when)
        s.add(scan)
        s.flush()
        s.add(DlpFinding(dlp_scan_id=scan.id, type="email", category="PII", start=0, end=3,
                         part="text", score=1.0, action="alert", level="confidential",
                         digest=None, preview="a**"))
        return scan.id


def _count(model) -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


@pytest.mark.usefixtures("platform_env")
def test_prune_keeps_what_is_needed_and_counts_the_rest():
    store = get_store(get_settings())
    gone = stored_file(store, b"old and unreferenced")
    old_scanned = stored_file(store, b"scanned long ago")
    held = stored_file(store, b"under legal hold")
    held_only = stored_file(store, b"held, never scanned")
    quarantined = stored_file(store, b"quarantined", state="quarantined")
    alerted = hashlib.sha256(b"named by an alert").hexdigest()
    fresh = stored_file(store, b"fresh", age=timedelta(days=1))

    kept_job = _job()
    pruned_jobs = [_job(), _job(status="failed")]
    queued_job = _job(status="queued")
    recent_job = _job(age=timedelta(days=1))

    pruned_scan = _scan(old_scanned)
    held_scan = _scan(held, job_id=kept_job)
    quarantined_scan = _scan(quarantined)
    alert_scan = _scan(alerted)
    pending_scan = _scan(old_scanned, status="pending")
    recent_scan = _scan(fresh, age=timedelta(days=1))
    pruned_dlp, alert_dlp = _dlp(None), _dlp(None)
    with session_scope() as s:
        when = utcnow() - OLD
        s.add_all([SecurityEvent(kind="auth.failure", severity="medium", details={},
                                 created_at=when),
                   SecurityEvent(kind="auth.failure", severity="medium", details={},
                                 created_at=utcnow() - timedelta(days=194, hours=12)),
                   SecurityEvent(kind="auth.failure", severity="medium", details={},
                                 created_at=utcnow())])
        s.add(IdempotencyRecord(owner="key:test", key="k", request_hash="0" * 64,
                                job_ids=[], created_at=when))
        s.add(Alert(rule="r", severity="high", title="t", subject=alerted, dedup_key="d",
                    status="open", details={"dlp_scan_id": alert_dlp, "ids": [alert_scan]},
                    first_seen_at=utcnow() - timedelta(days=194),
                    last_seen_at=utcnow() - timedelta(days=194)))
        retention.place_hold(session=s, sha256=held, reason="case 42", ctx=CTX)
        retention.place_hold(session=s, sha256=held_only, reason="case 42", ctx=CTX)

    from tasks.system import prune

    result = prune()
    assert result["deleted"] == {"scans": 1, "dlp_scans": 1, "jobs": 2, "security_events": 1,
                                 "idempotency_records": 1, "files": 1}
    assert result["kept"] == {"scans": 3, "dlp_scans": 1, "jobs": 1, "files": 1}
    with session_scope() as s:
        scans_left = set(s.scalars(select(ScanResult.id)))
        assert scans_left == {held_scan, quarantined_scan, alert_scan, pending_scan, recent_scan}
        assert pruned_scan not in scans_left
        assert set(s.scalars(select(DlpScan.id))) == {alert_dlp} and pruned_dlp != alert_dlp
        assert set(s.scalars(select(Job.id))) == {kept_job, queued_job, recent_job}
        assert not set(pruned_jobs) & set(s.scalars(select(Job.id)))
        # the event half a day older than the open alert stays: it may have raised it
        assert s.scalar(select(func.count()).select_from(SecurityEvent)) == 2
        files = {f.sha256: f.state for f in s.scalars(select(StoredFile))}
        assert files == {old_scanned: "stored", held: "stored", held_only: "stored",
                         quarantined: "quarantined", fresh: "stored"}
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "retention.prune")).one()
        assert entry.details == result and entry.actor == "system:retention"
    assert _count(ScanFinding) == 5 and _count(DlpFinding) == 1
    with pytest.raises(NotFound):
        store.read(gone)  # its encrypted content is gone too
    assert store.read(held) == b"under legal hold"

    # a second run finds nothing more; releasing the hold lets it go
    assert prune()["deleted"] == {"scans": 0, "dlp_scans": 0, "jobs": 0, "security_events": 0,
                                  "idempotency_records": 0, "files": 0}
    with session_scope() as s:
        for hold in retention.active_holds(session=s):
            retention.release_hold(session=s, hold_id=hold.id, ctx=CTX)
    released = prune()["deleted"]
    assert (released["scans"], released["files"]) == (1, 2)  # the held scan, both held files


def test_zero_keeps_forever_and_holds_need_a_reason(sqlite_env, monkeypatch):
    for table in ("JOBS", "EVENTS", "SCANS", "DLP", "FILES"):
        monkeypatch.setenv(f"SECOPS_RETENTION_{table}_DAYS", "0")
    get_settings.cache_clear()
    _job()
    _scan(hashlib.sha256(b"x").hexdigest())
    with session_scope() as s:
        result = retention.prune(session=s, settings=get_settings())
        assert result.as_dict() == {"deleted": {"idempotency_records": 0}, "kept": {}}
        with pytest.raises(InvalidInput):
            retention.place_hold(session=s, sha256="a" * 64, reason="  ", ctx=CTX)
    assert _count(Job) == 1 and _count(ScanResult) == 1
