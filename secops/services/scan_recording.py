"""The ``scan.file`` job on the worker: plan, scan, record.

The job runs in three steps so that no database transaction is open while a file is
scanned (on SQLite a transaction holds the write lock): :func:`plan_file_scan` reads
what to do, :func:`execute_file_scans` decrypts and scans without the database, and
:func:`record_file_scans` stores the verdicts and findings, quarantines a malicious
file, runs DLP on an accepted file when ``SECOPS_DLP_ON_SCAN`` is set, and raises a
security event for every suspicious or malicious file (an alert for every malicious
upload).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, cast

import redis
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import Job, ScanFinding, ScanResult, StoredFile
from secops.dlp import DocumentResult
from secops.dlp.baseline import Suppression, filter_scan
from secops.errors import NotFound
from secops.scanning import FileResult, Scanner, Verdict
from secops.services import content, monitor, suppressions
from secops.services import dlp as dlp_service
from secops.services.quarantine import quarantine_file
from secops.services.scans import (
    complete_from_cache,
    events_for,
    find_cached,
    finding_values,
    findings_of,
    scan_details,
)
from secops.services.storage import BlobStore, CorruptBlob, valid_sha256

log = logging.getLogger("secops.scans")


@dataclass(frozen=True)
class FilePlan:
    scan_id: str
    sha256: str
    filename: str


@dataclass
class JobPlan:
    """What a ``scan.file`` job has left to do: ``files`` to scan, ``done`` already answered."""

    files: list[FilePlan] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)
    single: bool = True  # the job named one file: its result is that file's summary
    # Scan suppressions in force for the planned files' contents (usually none).
    suppressions: list[Suppression] = field(default_factory=list)


@dataclass(frozen=True)
class ScanView:
    """The columns of a scan that its job reads and reports, read without the ORM: the
    job's plan and record steps run for every job, and loading, tracking and flushing
    ORM objects cost more than the statements themselves."""

    id: str
    sha256: str
    filename: str
    source: str
    path: str | None
    status: str
    verdict: str | None
    cached: bool
    error: str | None
    job_id: str | None
    submitted_by: str


_SCANS = cast(Table, ScanResult.__table__)
_VIEW_COLUMNS = tuple(_SCANS.c[name] for name in ScanView.__dataclass_fields__)
# Built once: constructing a statement costs more than running it (SQLAlchemy's
# coercions and cache key), and these run for every job.
_READ_VIEWS = select(*_VIEW_COLUMNS).where(_SCANS.c.id.in_(bindparam("ids", expanding=True)))
_RECORD_COMPLETE = update(_SCANS).where(_SCANS.c.id == bindparam("b_id")).values(
    status="complete", verdict=bindparam("b_verdict"), mime=bindparam("b_mime"),
    description=bindparam("b_description"), ruleset_version=bindparam("b_ruleset_version"),
    completed_at=bindparam("b_completed_at"))
_RECORD_FAILED = update(_SCANS).where(_SCANS.c.id == bindparam("b_id")).values(
    status="failed", error=bindparam("b_error"), completed_at=bindparam("b_completed_at"))
_ASSIGN_JOB = update(_SCANS).where(_SCANS.c.id.in_(bindparam("ids", expanding=True))).values(
    job_id=bindparam("b_job_id"))
_INSERT_FINDINGS = insert(cast(Table, ScanFinding.__table__))


def scan_views(session: Session, scan_ids: list[str]) -> dict[str, ScanView]:
    """The scans with these ids (those that exist), by id."""
    if not scan_ids:
        return {}
    rows = session.connection().execute(_READ_VIEWS, {"ids": scan_ids})
    return {row.id: ScanView(*row) for row in rows}


def _summary(scan: ScanResult | ScanView, quarantined: bool = False,
             dlp_scan_id: str | None = None) -> dict[str, Any]:
    out = {"scan_id": scan.id, "sha256": scan.sha256, "verdict": scan.verdict,
           "cached": scan.cached, "quarantined": quarantined, "dlp_scan_id": dlp_scan_id}
    if scan.status == "failed":
        out["error"] = scan.error
    return out


def _stored_scan(session: Session, job: Job, sha256: str, ruleset_version: str) -> ScanResult:
    """The scan record of a job that names a stored file (made on the first delivery)."""
    params = job.params
    content.lock(session, [sha256])  # the file stays while the scan is committed: services.content
    stored = session.get(StoredFile, sha256)
    if stored is None or stored.state == "deleted":
        raise NotFound("stored file not found")
    existing = session.scalar(select(ScanResult).where(ScanResult.job_id == job.id))
    if existing is not None:
        return existing
    scan = ScanResult(sha256=sha256, filename=str(params.get("filename") or sha256),
                      size=stored.size, source="stored", status="pending", cached=False,
                      job_id=job.id, submitted_by=job.submitted_by, created_at=utcnow())
    session.add(scan)
    session.flush()
    cached = None if params.get("rescan") or suppressions.with_scan_history(
        session=session, sha256s=[sha256]) else find_cached(
        session=session, sha256=sha256, ruleset_version=ruleset_version)
    if cached is not None:
        complete_from_cache(session=session, scan=scan, cached=cached)
    return scan


def plan_file_scan(*, session: Session, job: Job, ruleset_version: str) -> JobPlan:
    """The scan records of this job (made now for a job naming a stored file), split into
    those still to scan and those already finished (a cached answer, or a redelivery)."""
    params = job.params
    ids = params.get("scan_ids") or ([params["scan_id"]] if params.get("scan_id") else [])
    scans: list[ScanResult | ScanView]
    if ids:
        by_id = scan_views(session, [str(i) for i in ids])
        scans = [by_id[str(i)] for i in ids if str(i) in by_id]
        if not scans:
            raise NotFound("scan not found")
    else:
        scans = [_stored_scan(session, job, valid_sha256(str(params["sha256"])), ruleset_version)]
    plan = JobPlan(single=len(ids) <= 1 and not params.get("scan_ids"))
    finished = [scan for scan in scans if scan.status != "pending"]
    states = scan_details(session=session, scans=finished).states  # no query when none are
    elsewhere = []  # pending scans recorded under another job: this one answers for them now
    for scan in scans:
        if scan.status != "pending":
            plan.done.append(_summary(scan, states.get(scan.sha256) == "quarantined"))
            continue
        if scan.job_id != job.id:
            elsewhere.append(scan.id)
        plan.files.append(FilePlan(scan.id, scan.sha256, scan.filename))
    if elsewhere:
        session.connection().execute(_ASSIGN_JOB, {"ids": elsewhere, "b_job_id": job.id})
    if plan.files:
        plan.suppressions = suppressions.active_rules(
            session=session, family="scan", sha256s=[f.sha256 for f in plan.files])
    return plan


@dataclass
class Executed:
    result: FileResult | None
    document: DocumentResult | None = None
    dlp_error: str | None = None
    error: str | None = None  # the file could not be scanned (the others of its job go on)
    corrupt: bool = False  # the stored copy failed authentication: tampering or damage
    suppressed: int = 0  # findings dropped by scan suppressions


def execute_file_scan(plan: FilePlan, *, store: BlobStore, scanner: Scanner,
                      dlp_on_scan: bool, settings: Settings,
                      fatal: tuple[type[BaseException], ...] = (),
                      rules: list[Suppression] | None = None) -> Executed:
    """Decrypt and scan one file (no database); DLP too when configured and accepted.
    Findings matching a scan suppression (``rules``) are dropped before the verdict.

    A stored file that is gone or fails authentication is that file's error, not the
    job's; any other exception propagates.
    """
    try:
        data = store.read(plan.sha256)
    except CorruptBlob as exc:
        return Executed(None, error=exc.message, corrupt=True)
    except NotFound as exc:
        return Executed(None, error=exc.message)
    result, suppressed = filter_scan(
        scanner.scan_bytes(data, plan.filename, sha256=plan.sha256, fatal=fatal), rules or (),
        plan.filename)
    executed = Executed(result, suppressed=suppressed)
    if dlp_on_scan and executed.result is not None \
            and executed.result.verdict is not Verdict.MALICIOUS:
        executed.document, executed.dlp_error = dlp_service.classify_bytes(
            data, plan.filename, settings=settings)
    return executed


def execute_file_scans(
    plan: JobPlan, *, store: BlobStore, scanner: Scanner, dlp_on_scan: bool, settings: Settings,
    fatal: tuple[type[BaseException], ...] = (),
) -> list[Executed]:
    """:func:`execute_file_scan` for each planned file. An exception scanning one file (a
    parser bug on hostile input) fails only that file, unless it is one of ``fatal``
    (the worker's time limit), which stops the job."""
    out = []
    for file in plan.files:
        try:
            out.append(execute_file_scan(file, store=store, scanner=scanner,
                                         dlp_on_scan=dlp_on_scan, settings=settings,
                                         fatal=fatal, rules=plan.suppressions))
        except fatal:
            raise
        except Exception as exc:
            log.exception("scanning a file failed", extra={"scan_id": file.scan_id})
            out.append(Executed(None, error=f"internal error ({type(exc).__name__})"))
    return out


@dataclass
class Recorded:
    summary: dict[str, Any]
    deliveries: list[tuple[str, str]] = field(default_factory=list)
    # Rows for the statements that record the job's files, run together at the end.
    completed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)


def _record_one(session: Session, scan: ScanView, executed: Executed, store: BlobStore,
                kv: redis.Redis | None, out: Recorded,
                dlp_rules: list[Suppression] | None = None) -> dict[str, Any]:
    result, now = executed.result, utcnow()
    if result is None:
        scan = replace(scan, status="failed", error=(executed.error or "")[:500])
        out.failed.append({"b_id": scan.id, "b_error": scan.error, "b_completed_at": now})
        if executed.corrupt:
            outcome = monitor.log_security_event(
                "storage.corrupt", {"subject": scan.sha256, "sha256": scan.sha256,
                                    "scan_id": scan.id, "error": scan.error}, "high",
                session=session, kv=kv)
            out.deliveries.extend(outcome.deliveries)
        return _summary(scan)
    rows = findings_of(result)
    scan = replace(scan, status="complete", verdict=result.verdict.value)
    out.completed.append({
        "b_id": scan.id, "b_verdict": scan.verdict, "b_mime": result.mime[:128],
        "b_description": result.description[:500],
        "b_ruleset_version": result.ruleset_version, "b_completed_at": now})
    out.findings.extend(finding_values(scan.id, rows))
    quarantined = False
    if result.verdict is Verdict.MALICIOUS:
        quarantined = quarantine_file(session=session, store=store, sha256=scan.sha256)
    summary = _summary(scan, quarantined)
    if executed.suppressed:
        summary["suppressed"] = executed.suppressed
    if executed.document is not None or executed.dlp_error is not None:
        dlp_scan, stored = dlp_service.record_for_scan(
            session=session, scan_id=scan.id, sha256=scan.sha256, filename=scan.filename,
            submitted_by=scan.submitted_by, job_id=scan.job_id, document=executed.document,
            error=executed.dlp_error, kv=kv, store=store, rules=dlp_rules)
        summary["dlp_scan_id"] = dlp_scan.id
        if stored.quarantined:  # a DLP finding whose policy action is ``block``
            summary["quarantined"] = True
        out.deliveries.extend(stored.deliveries)
    for kind, details, severity in events_for(scan, rows):
        outcome = monitor.log_security_event(kind, details, severity, session=session, kv=kv)
        out.deliveries.extend(outcome.deliveries)
    return summary


def record_file_scans(*, session: Session, plan: JobPlan, executed: list[Executed],
                      store: BlobStore, kv: redis.Redis | None) -> Recorded:
    """Store every file's outcome in one transaction (the caller commits), with its
    findings, quarantine, DLP record and security events. A file already finished by an
    earlier delivery of this job is left as it was."""
    out = Recorded({})
    by_id = scan_views(session, [file.scan_id for file in plan.files])
    summaries = list(plan.done)
    # the DLP suppressions in force, read once for the job's classified files
    dlp_rules = (suppressions.active_rules(session=session, family="dlp")
                 if any(e.document is not None for e in executed) else [])
    for file, outcome in zip(plan.files, executed, strict=True):
        scan = by_id.get(file.scan_id)
        if scan is None:
            continue  # removed meanwhile (retention); nothing to record
        summaries.append(_summary(scan) if scan.status != "pending"
                         else _record_one(session, scan, outcome, store, kv, out, dlp_rules))
    connection = session.connection()
    for statement, rows in ((_RECORD_COMPLETE, out.completed), (_RECORD_FAILED, out.failed),
                            (_INSERT_FINDINGS, out.findings)):
        if rows:
            connection.execute(statement, rows)
    if plan.single and len(summaries) == 1:
        out.summary = summaries[0]
    else:
        verdicts: dict[str, int] = {}
        for item in summaries:
            key = item["verdict"] or "failed"
            verdicts[key] = verdicts.get(key, 0) + 1
        out.summary = {"scans": summaries, "count": len(summaries), "verdicts": verdicts}
    return out
