"""Retention: what the platform stores does not grow forever.

One prune removes, per table, what is older than its setting (days; ``0`` keeps it
forever): finished jobs (``SECOPS_RETENTION_JOBS_DAYS``), security events
(``..._EVENTS_DAYS``), finished file scans with their findings (``..._SCANS_DAYS``),
finished DLP scans with their findings (``..._DLP_DAYS``), idempotency records
(``SECOPS_IDEMPOTENCY_TTL_HOURS``) and stored files no scan refers to any more
(``..._FILES_DAYS``). Their encrypted content is removed after the commit, batch by batch
(:func:`remove_files`), each under the content lock (:mod:`secops.services.content`)
and only once no row names it again: content uploaded again meanwhile stays.

Never removed, whatever their age:

* anything an **open alert** names (its subject, or a value of its details: a scan id,
  a DLP scan id, a SHA-256), and security events from a day before the oldest open
  alert on (the events the alert was raised from);
* **quarantined** files and their scans (an admin has not decided about them yet);
* content under **legal hold** (``secops retention hold SHA256``): the file, its scans
  and DLP scans;
* jobs a kept scan or DLP scan belongs to, and unfinished jobs and scans.

The audit log has its own retention (archived to files, see ``services.audit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import (
    TERMINAL_STATUSES,
    Alert,
    DlpFinding,
    DlpScan,
    Job,
    LegalHold,
    PrivacyRequest,
    ScanFinding,
    ScanResult,
    SecurityEvent,
    StoredFile,
)
from secops.db.session import session_scope
from secops.errors import InvalidInput, NotFound
from secops.services import audit, content, idempotency
from secops.services.audit import AuditContext
from secops.services.storage import BlobStore, valid_sha256

BATCH = 500  # ids per DELETE ... IN (...)
FILE_BATCH = 100  # contents removed per transaction (see remove_files)
EVENT_MARGIN = timedelta(days=1)  # events kept before the oldest open alert


@dataclass
class PruneResult:
    counts: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)  # old enough, but needed
    files_to_remove: list[str] = field(default_factory=list)  # content, after the commit

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": dict(self.counts), "kept": dict(self.kept)}


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return set()


def protected_values(*, session: Session) -> tuple[set[str], set[str], datetime | None]:
    """(ids and digests open alerts name, SHA-256s held or quarantined, oldest open alert)."""
    named: set[str] = set()
    oldest: datetime | None = None
    for alert in session.scalars(select(Alert).where(Alert.status == "open")):
        named |= {alert.subject} | _strings(alert.details)
        if oldest is None or alert.first_seen_at < oldest:
            oldest = alert.first_seen_at
    shas = set(session.scalars(select(LegalHold.sha256).where(LegalHold.released_at.is_(None))))
    shas |= set(session.scalars(select(StoredFile.sha256).where(
        StoredFile.state == "quarantined")))
    return named, shas, oldest


def _delete_ids(session: Session, model: Any, column: Any, ids: list[Any]) -> int:
    done = 0
    for i in range(0, len(ids), BATCH):
        result = session.execute(delete(model).where(column.in_(ids[i : i + BATCH])))
        done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


def prune(*, session: Session, settings: Settings, now: datetime | None = None) -> PruneResult:
    """Delete what retention allows (in the caller's transaction); the files whose
    content the caller removes after committing are in ``files_to_remove``."""
    now = now or utcnow()
    out = PruneResult()
    named, held, oldest_alert = protected_values(session=session)

    def keep_scan(scan_id: str, sha256: str | None) -> bool:
        return scan_id in named or (sha256 is not None and (sha256 in held or sha256 in named))

    # file scans (findings first: the database may not cascade)
    if (before := _cutoff(now, settings.retention_scans_days)) is not None:
        rows = session.execute(select(ScanResult.id, ScanResult.sha256).where(
            ScanResult.status != "pending", ScanResult.created_at < before)).all()
        ids = [r.id for r in rows if not keep_scan(r.id, r.sha256)]
        out.kept["scans"] = len(rows) - len(ids)
        _delete_ids(session, ScanFinding, ScanFinding.scan_id, ids)
        out.counts["scans"] = _delete_ids(session, ScanResult, ScanResult.id, ids)

    if (before := _cutoff(now, settings.retention_dlp_days)) is not None:
        dlp_rows = session.execute(select(DlpScan.id, DlpScan.sha256).where(
            DlpScan.status != "pending", DlpScan.created_at < before)).all()
        ids = [r.id for r in dlp_rows if not keep_scan(r.id, r.sha256)]
        out.kept["dlp_scans"] = len(dlp_rows) - len(ids)
        _delete_ids(session, DlpFinding, DlpFinding.dlp_scan_id, ids)
        out.counts["dlp_scans"] = _delete_ids(session, DlpScan, DlpScan.id, ids)

    if (before := _cutoff(now, settings.retention_jobs_days)) is not None:
        in_use = select(ScanResult.job_id).where(ScanResult.job_id.is_not(None)).union(
            select(DlpScan.job_id).where(DlpScan.job_id.is_not(None)))
        candidates: list[str] = list(session.scalars(select(Job.id).where(
            Job.status.in_(TERMINAL_STATUSES),
            func.coalesce(Job.finished_at, Job.updated_at) < before)))
        used = set(session.scalars(in_use)) & set(candidates)
        ids = [i for i in candidates if i not in used and i not in named]
        out.kept["jobs"] = len(candidates) - len(ids)
        out.counts["jobs"] = _delete_ids(session, Job, Job.id, ids)

    if (before := _cutoff(now, settings.retention_events_days)) is not None:
        if oldest_alert is not None:
            before = min(before, oldest_alert - EVENT_MARGIN)
        result = session.execute(delete(SecurityEvent).where(SecurityEvent.created_at < before))
        out.counts["security_events"] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    out.counts["idempotency_records"] = idempotency.prune(
        session=session, older_than=timedelta(hours=settings.idempotency_ttl_hours))

    if (before := _cutoff(now, settings.retention_files_days)) is not None:
        referenced = select(ScanResult.sha256).union(
            select(DlpScan.sha256).where(DlpScan.sha256.is_not(None)))
        old_files = session.scalars(select(StoredFile.sha256).where(
            StoredFile.state.in_(("stored", "released")), StoredFile.updated_at < before,
            StoredFile.sha256.not_in(referenced))).all()
        shas = [s for s in old_files if s not in held and s not in named]
        out.kept["files"] = len(old_files) - len(shas)
        out.counts["files"] = _delete_ids(session, StoredFile, StoredFile.sha256, shas)
        out.files_to_remove = shas
    session.flush()
    return out


def still_needed(session: Session, sha256s: list[str]) -> set[str]:
    """Of contents whose rows retention deleted, those a row names again (run under the
    exclusive content lock): a stored file's row, a scan, a DLP scan, a privacy bundle
    or a legal hold. A scan committed by an upload that found the content's row before
    retention deleted it gets the row back."""
    states = {sha: state for sha, state in session.execute(
        select(StoredFile.sha256, StoredFile.state).where(StoredFile.sha256.in_(sha256s)))}
    rows = {sha for sha, state in states.items() if state != "deleted"}
    sizes = {sha: size for sha, size in session.execute(
        select(ScanResult.sha256, ScanResult.size).where(ScanResult.sha256.in_(sha256s)))}
    named = rows | set(sizes)
    named |= set(session.scalars(select(DlpScan.sha256).where(DlpScan.sha256.in_(sha256s))))
    named |= set(session.scalars(select(PrivacyRequest.bundle_sha256).where(
        PrivacyRequest.bundle_sha256.in_(sha256s))))
    named |= set(session.scalars(select(LegalHold.sha256).where(
        LegalHold.sha256.in_(sha256s), LegalHold.released_at.is_(None))))
    now = utcnow()
    for sha256 in sorted(set(sizes) - set(states)):
        session.add(StoredFile(sha256=sha256, size=sizes[sha256], state="stored",
                               created_at=now, updated_at=now))
    return named


def remove_files(*, store: BlobStore, sha256s: list[str]) -> int:
    """Remove the content of the files a committed :func:`prune` deleted, in
    transactions of ``FILE_BATCH`` contents under the exclusive content lock, keeping
    what a row names again (:func:`still_needed`). Returns how many were removed."""
    removed = 0
    for i in range(0, len(sha256s), FILE_BATCH):
        with session_scope() as session:
            removed += len(content.remove(session, store, sha256s[i : i + FILE_BATCH],
                                          still_needed))
    return removed


# -- legal holds -------------------------------------------------------------------------------


def place_hold(*, session: Session, sha256: str, reason: str, ctx: AuditContext) -> LegalHold:
    """Keep this content, its scans and DLP scans from retention until released; audited."""
    sha256 = valid_sha256(sha256)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidInput("a legal hold needs a reason (at most 500 characters)")
    hold = LegalHold(sha256=sha256, reason=reason, created_by=ctx.actor[:120],
                     created_at=utcnow())
    session.add(hold)
    session.flush()
    audit.record(session=session, ctx=ctx, action="retention.hold", target=f"file:{sha256}",
                 details={"hold_id": hold.id, "reason": reason})
    return hold


def release_hold(*, session: Session, hold_id: str, ctx: AuditContext) -> LegalHold:
    hold = session.get(LegalHold, hold_id)
    if hold is None or hold.released_at is not None:
        raise NotFound("legal hold not found")
    hold.released_at = utcnow()
    audit.record(session=session, ctx=ctx, action="retention.release", target=f"file:{hold.sha256}",
                 details={"hold_id": hold.id})
    return hold


def active_holds(*, session: Session) -> list[LegalHold]:
    return list(session.scalars(select(LegalHold).where(LegalHold.released_at.is_(None))
                                .order_by(LegalHold.created_at)).all())
