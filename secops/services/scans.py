"""File scanning on the platform: submissions, the ``scan.file`` job, quarantine, results.

A submission stores each uploaded file (``services.storage``) and adds a ``pending``
scan record per file with a ``scan.file`` job, unless the same SHA-256 was already
scanned with the same ruleset version: then the record is completed at once from the
earlier result and marked ``cached`` (``rescan`` forces a new scan). The job runs in
three steps so that no database transaction is open while a file is scanned (on SQLite
a transaction holds the write lock): :func:`plan_file_scan` reads what to do,
:func:`execute_file_scan` decrypts and scans without the database, and
:func:`record_file_scan` stores the verdict and findings, quarantines a malicious file,
runs DLP on an accepted file when ``SECOPS_DLP_ON_SCAN`` is set, and raises a security
event for every suspicious or malicious file (an alert for every malicious upload).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, cast

import redis
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import new_id, utcnow
from secops.db.models import Job, ScanFinding, ScanResult, StoredFile
from secops.db.session import insert_skipping_existing
from secops.dlp import DocumentResult
from secops.errors import Conflict, NotFound
from secops.scanning import FileResult, ScanConfig, Scanner, Verdict
from secops.services import audit, monitor
from secops.services import dlp as dlp_service
from secops.services.audit import AuditContext
from secops.services.jobs import create_job
from secops.services.storage import BlobStore, CorruptBlob, StagedBlob, valid_sha256

log = logging.getLogger("secops.scans")
SCAN_KIND = "scan.file"
MALICIOUS_UPLOAD = "scan.malicious_upload"
monitor.register_rule(monitor.AlertRule(
    MALICIOUS_UPLOAD, frozenset({"scan.malicious"}), "upload_id", 0, 86400, "critical",
    "malicious file uploaded"))

Event = tuple[str, dict[str, Any], str]


def scan_config(settings: Settings) -> ScanConfig:
    allowed = settings.scan_allowed_mime_types
    return ScanConfig(
        rule_dirs=tuple(settings.scan_rule_dirs),
        sha256_blocklists=tuple(settings.scan_sha256_blocklists),
        md5_blocklists=tuple(settings.scan_md5_blocklists),
        allowed_mime_types=frozenset(allowed) if allowed is not None else None,
        match_timeout=settings.scan_match_timeout,
        max_file_bytes=max(settings.scan_max_upload_bytes, 1),
        md5=False,  # only for MD5 blocklists (then always computed); it is not stored
    )


@lru_cache(maxsize=4)
def _scanner(config: ScanConfig, stamps: tuple[tuple[str, int, int], ...]) -> Scanner:
    return Scanner(config)


def _stamps(config: ScanConfig) -> tuple[tuple[str, int, int], ...]:
    """Modification time and size of each blocklist and rule file: a changed file gives
    a new scanner, whose version (the verdict cache key) then differs."""
    paths = [*config.sha256_blocklists, *config.md5_blocklists]
    for directory in config.rule_dirs:
        with contextlib.suppress(OSError):
            paths.extend(sorted(p for p in directory.iterdir()))
    stamps = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            stamps.append((str(path), -1, -1))
        else:
            stamps.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(stamps)


def get_scanner(settings: Settings) -> Scanner:
    """The process's scanner for these settings (rules compiled once per content of the
    rule and blocklist files: an edited blocklist applies to the next scan)."""
    config = scan_config(settings)
    return _scanner(config, _stamps(config))


def events_for(scan: ScanResult | ScanView, findings: list[dict[str, Any]]) -> list[Event]:
    """A security event for a suspicious or malicious file; uploads also feed the alert rule."""
    if scan.verdict not in (Verdict.SUSPICIOUS.value, Verdict.MALICIOUS.value):
        return []
    details: dict[str, Any] = {
        "subject": scan.sha256, "sha256": scan.sha256, "scan_id": scan.id,
        "filename": scan.filename, "source": scan.source, "verdict": scan.verdict,
        "cached": scan.cached, "submitted_by": scan.submitted_by,
        "findings": sorted({f["rule_id"] for f in findings})[:20],
    }
    if scan.path:
        details["path"] = scan.path
    if scan.source == "upload":
        details["upload_id"] = scan.id
    if scan.verdict == Verdict.MALICIOUS.value:
        return [("scan.malicious", details, "critical")]
    return [("scan.suspicious", details, "medium")]


def finding_values(scan_id: str, findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``scan_findings`` columns of a scan's findings (for an insert or the ORM)."""
    return [{"scan_id": scan_id, "rule_id": f["rule_id"][:100], "severity": f["severity"],
             "description": f["description"], "location": f["location"]} for f in findings]


def finding_rows(scan_id: str, findings: list[dict[str, Any]]) -> list[ScanFinding]:
    return [ScanFinding(**values) for values in finding_values(scan_id, findings)]


def findings_of(result: FileResult) -> list[dict[str, Any]]:
    return [{"rule_id": f.id, "severity": f.severity.label, "description": f.description,
             "location": f.location} for f in result.findings]


def find_cached(*, session: Session, sha256: str, ruleset_version: str) -> ScanResult | None:
    """The newest completed, freshly scanned result for this content and ruleset."""
    return newest_cached(session=session, sha256s=[sha256],
                         ruleset_version=ruleset_version).get(sha256)


def findings(*, session: Session, scan_id: str) -> list[ScanFinding]:
    return list(session.scalars(select(ScanFinding).where(ScanFinding.scan_id == scan_id)
                                .order_by(ScanFinding.id)).all())


def _complete_from_cache(session: Session, scan: ScanResult, cached: ScanResult
                         ) -> tuple[list[dict[str, Any]], list[ScanFinding]]:
    scan.status, scan.cached, scan.cached_from = "complete", True, cached.id
    scan.verdict, scan.mime, scan.description = cached.verdict, cached.mime, cached.description
    scan.ruleset_version, scan.completed_at = cached.ruleset_version, utcnow()
    rows = [{"rule_id": f.rule_id, "severity": f.severity, "description": f.description,
             "location": f.location} for f in findings(session=session, scan_id=cached.id)]
    added = finding_rows(scan.id, rows)
    session.add_all(added)
    return rows, added


def _remember_files(session: Session, blobs: list[StagedBlob]) -> dict[str, str]:
    """A ``stored_files`` row for each stored content (one query for those known, one
    insert for the new); sha256 -> the file's state."""
    shas = sorted({b.sha256 for b in blobs})
    known = {row.sha256: row for row in session.scalars(
        select(StoredFile).where(StoredFile.sha256.in_(shas)))}
    states: dict[str, str] = {}
    new: list[dict[str, Any]] = []
    now = utcnow()
    for blob in blobs:
        if blob.sha256 in states:
            continue  # twice in this request
        row = known.get(blob.sha256)
        if row is None:
            new.append({"sha256": blob.sha256, "size": blob.size, "state": "stored",
                        "created_at": now, "updated_at": now, "quarantined_at": None})
        elif row.state == "deleted":
            row.state, row.updated_at, row.quarantined_at = "stored", now, None
        states[blob.sha256] = row.state if row is not None else "stored"
    if new:
        # Another request may store the same new content at the same moment: its row,
        # committed first, is the same record, so ours is not needed.
        session.execute(insert_skipping_existing(session, StoredFile), new)
    return states


def _quarantine(session: Session, store: BlobStore, sha256: str) -> bool:
    row = session.get(StoredFile, sha256)
    if row is None or row.state in ("released", "deleted"):
        return False  # an admin has decided about this content already
    if row.state != "quarantined":
        row.state, row.quarantined_at, row.updated_at = "quarantined", utcnow(), utcnow()
    store.move(sha256, to_quarantine=True)
    return True


@dataclass
class ScanDetails:
    findings: dict[str, list[ScanFinding]]
    jobs: dict[str, tuple[str, str | None]]  # job id -> (status, error)
    states: dict[str, str]  # sha256 -> stored file state


@dataclass
class Submission:
    scans: list[ScanResult] = field(default_factory=list)
    jobs: list[tuple[str, str]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # What an answer needs besides the scans, known without reading it back: findings
    # (of cached answers) and each stored file's state. New jobs are queued.
    details: ScanDetails | None = None


def newest_cached(*, session: Session, sha256s: list[str],
                  ruleset_version: str) -> dict[str, ScanResult]:
    """The newest completed, freshly scanned result for each content and this ruleset,
    in one query: sha256 -> result (contents never scanned are absent)."""
    found: dict[str, ScanResult] = {}
    if not sha256s:
        return found
    for row in session.scalars(
            select(ScanResult)
            .where(ScanResult.sha256.in_(sorted(set(sha256s))),
                   ScanResult.ruleset_version == ruleset_version,
                   ScanResult.status == "complete", ScanResult.cached.is_(False))
            .order_by(ScanResult.completed_at.desc())):
        found.setdefault(row.sha256, row)
    return found


def job_groups(scans: list[ScanResult], *, max_files: int, max_bytes: int) -> list[list[ScanResult]]:
    """Split an upload's pending scans into jobs of at most ``max_files`` files and
    ``max_bytes`` bytes (a file larger than that is a job of its own), in upload order.

    Per-job costs (a Celery message, the claim, the plan and the outcome transactions)
    are then shared by several files, and a large upload still spreads over every
    worker process.
    """
    groups: list[list[ScanResult]] = []
    size = 0
    for scan in scans:
        if not groups or len(groups[-1]) >= max_files or (groups[-1] and size + scan.size > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(scan)
        size += scan.size
    return groups


def submit_uploads(
    *, session: Session, store: BlobStore, staged: list[StagedBlob], submitted_by: str,
    rescan: bool, ruleset_version: str, audit_ctx: AuditContext, job_max_files: int,
    job_max_bytes: int,
) -> Submission:
    """Store finished uploads and add their scan records and jobs (cached ones complete)."""
    store.commit_all(staged)  # durable, atomic; identical content already stored is kept
    out = Submission()
    cache = {} if rescan else newest_cached(session=session, sha256s=[b.sha256 for b in staged],
                                            ruleset_version=ruleset_version)
    pending: list[ScanResult] = []  # not added to the session: inserted together below
    states = _remember_files(session, staged)
    found: dict[str, list[ScanFinding]] = {}
    for blob in staged:
        scan = ScanResult(id=new_id(), sha256=blob.sha256, filename=blob.filename[:255],
                          size=blob.size, source="upload", status="pending", cached=False,
                          submitted_by=submitted_by, created_at=utcnow())
        cached = cache.get(blob.sha256)
        if cached is not None:
            session.add(scan)
            rows, found[scan.id] = _complete_from_cache(session, scan, cached)
            if scan.verdict == Verdict.MALICIOUS.value:
                _quarantine(session, store, scan.sha256)
            out.events.extend(events_for(scan, rows))
        else:
            pending.append(scan)
        out.scans.append(scan)
    for group in job_groups(pending, max_files=job_max_files, max_bytes=job_max_bytes):
        job = create_job(session=session, kind=SCAN_KIND,
                         params={"scan_ids": [scan.id for scan in group]},
                         submitted_by=submitted_by)
        job.id = new_id()
        for scan in group:
            scan.job_id = job.id
        out.jobs.append((job.id, job.kind))
    if pending:  # one multi-row insert: the ORM's unit of work cost more than the rest
        session.execute(insert(ScanResult), [_scan_row(scan) for scan in pending])
    audit.record(session=session, ctx=audit_ctx, action="scans.submit",
                 target=f"scan:{out.scans[0].id}" if len(out.scans) == 1
                 else f"scans:batch:{len(out.scans)}",
                 details={"count": len(out.scans), "cached": sum(s.cached for s in out.scans),
                          "sha256": [s.sha256 for s in out.scans][:100],
                          "job_ids": [j for j, _ in out.jobs][:100], "rescan": rescan})
    out.details = ScanDetails(found, {}, states)
    return out


_SCAN_COLUMNS = tuple(column.key for column in ScanResult.__table__.columns)


def _scan_row(scan: ScanResult) -> dict[str, Any]:
    """Every column of a scan not in a session (those never set are None), so that one
    multi-row insert takes them all."""
    return {key: getattr(scan, key) for key in _SCAN_COLUMNS}


def get_scan(*, session: Session, scan_id: str) -> ScanResult:
    scan = session.get(ScanResult, scan_id)
    if scan is None:
        raise NotFound("scan not found")
    return scan


def scan_details(*, session: Session, scans: Sequence[ScanResult | ScanView]) -> ScanDetails:
    """Findings, job outcomes and file states of many scans, one query each."""
    if not scans:
        return ScanDetails({}, {}, {})
    ids = [s.id for s in scans]
    found: dict[str, list[ScanFinding]] = {}
    for f in session.scalars(select(ScanFinding).where(ScanFinding.scan_id.in_(ids))
                             .order_by(ScanFinding.id)):
        found.setdefault(f.scan_id, []).append(f)
    job_ids = [s.job_id for s in scans if s.job_id and s.status == "pending"]
    jobs = {row.id: (row.status, row.error) for row in session.execute(
        select(Job.id, Job.status, Job.error).where(Job.id.in_(job_ids)))} if job_ids else {}
    shas = sorted({s.sha256 for s in scans})
    states = {row.sha256: row.state for row in session.execute(
        select(StoredFile.sha256, StoredFile.state).where(StoredFile.sha256.in_(shas)))}
    return ScanDetails(found, jobs, states)


def get_scans(*, session: Session, scan_ids: list[str], finished: bool = False) -> list[ScanResult]:
    """The scans with these ids (any order); with ``finished``, only those no longer pending."""
    if not scan_ids:
        return []
    query = select(ScanResult).where(ScanResult.id.in_(scan_ids))
    if finished:
        query = query.where(ScanResult.status != "pending")
    return list(session.scalars(query).all())


# -- the scan.file job ---------------------------------------------------------------------


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
    cached = None if params.get("rescan") else find_cached(
        session=session, sha256=sha256, ruleset_version=ruleset_version)
    if cached is not None:
        _complete_from_cache(session, scan, cached)
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
    return plan


@dataclass
class Executed:
    result: FileResult | None
    document: DocumentResult | None = None
    dlp_error: str | None = None
    error: str | None = None  # the file could not be scanned (the others of its job go on)
    corrupt: bool = False  # the stored copy failed authentication: tampering or damage


def execute_file_scan(plan: FilePlan, *, store: BlobStore, scanner: Scanner,
                      dlp_on_scan: bool, settings: Settings,
                      fatal: tuple[type[BaseException], ...] = ()) -> Executed:
    """Decrypt and scan one file (no database); DLP too when configured and accepted.

    A stored file that is gone or fails authentication is that file's error, not the
    job's; any other exception propagates.
    """
    try:
        data = store.read(plan.sha256)
    except CorruptBlob as exc:
        return Executed(None, error=exc.message, corrupt=True)
    except NotFound as exc:
        return Executed(None, error=exc.message)
    executed = Executed(scanner.scan_bytes(data, plan.filename, sha256=plan.sha256,
                                           fatal=fatal))
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
                                         fatal=fatal))
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
                kv: redis.Redis | None, out: Recorded) -> dict[str, Any]:
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
        quarantined = _quarantine(session, store, scan.sha256)
    summary = _summary(scan, quarantined)
    if executed.document is not None or executed.dlp_error is not None:
        dlp_scan, deliveries = dlp_service.record_for_scan(
            session=session, scan_id=scan.id, sha256=scan.sha256, filename=scan.filename,
            submitted_by=scan.submitted_by, job_id=scan.job_id, document=executed.document,
            error=executed.dlp_error, kv=kv)
        summary["dlp_scan_id"] = dlp_scan.id
        out.deliveries.extend(deliveries)
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
    for file, outcome in zip(plan.files, executed, strict=True):
        scan = by_id.get(file.scan_id)
        if scan is None:
            continue  # removed meanwhile (retention); nothing to record
        summaries.append(_summary(scan) if scan.status != "pending"
                         else _record_one(session, scan, outcome, store, kv, out))
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


# -- quarantine ------------------------------------------------------------------------------


def _quarantined(session: Session, sha256: str) -> StoredFile:
    row = session.get(StoredFile, valid_sha256(sha256))
    if row is None:
        raise NotFound("no such stored file")
    if row.state != "quarantined":
        raise Conflict(f"file is not quarantined (it is {row.state})")
    return row


def list_quarantine(*, session: Session, limit: int = 100) -> list[StoredFile]:
    return list(session.scalars(select(StoredFile).where(StoredFile.state == "quarantined")
                                .order_by(StoredFile.quarantined_at.desc()).limit(limit)).all())


def release(*, session: Session, sha256: str, ctx: AuditContext) -> StoredFile:
    """Let a quarantined file out (it stays encrypted in storage); audited. The caller
    commits, then moves the file with :func:`apply_decision`: a failed commit leaves the
    file where it was, never out of quarantine while the record says otherwise."""
    row = _quarantined(session, sha256)
    row.state, row.updated_at = "released", utcnow()
    audit.record(session=session, ctx=ctx, action="quarantine.release", target=f"file:{sha256}",
                 details={"size": row.size, "quarantined_at": row.quarantined_at})
    return row


def delete(*, session: Session, sha256: str, ctx: AuditContext) -> StoredFile:
    """Destroy a quarantined file's content; the row stays as the record. Audited. The
    caller commits, then removes the content with :func:`apply_decision`."""
    row = _quarantined(session, sha256)
    row.state, row.updated_at = "deleted", utcnow()
    audit.record(session=session, ctx=ctx, action="quarantine.delete", target=f"file:{sha256}",
                 details={"size": row.size, "quarantined_at": row.quarantined_at})
    return row


def apply_decision(*, store: BlobStore, row: StoredFile) -> None:
    """Carry out a committed release or delete on the stored file (both idempotent)."""
    if row.state == "released":
        store.move(row.sha256, to_quarantine=False)
    elif row.state == "deleted":
        store.delete(row.sha256)
