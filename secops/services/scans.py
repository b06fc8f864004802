"""File scanning on the platform: submissions and reads of scan results.

A submission stores each uploaded file (``services.storage``) and adds a ``pending``
scan record per file with a ``scan.file`` job, unless the same SHA-256 was already
scanned with the same ruleset version: then the record is completed at once from the
earlier result and marked ``cached`` (``rescan`` forces a new scan), and a malicious
one is quarantined (:mod:`secops.services.quarantine`). The job itself is recorded by
:mod:`secops.services.scan_recording`; this module also holds the scanner the API and
the workers share (:func:`get_scanner`) and the security events of a verdict
(:func:`events_for`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import new_id, utcnow
from secops.db.models import Job, ScanFinding, ScanResult, StoredFile
from secops.db.session import insert_skipping_existing
from secops.errors import NotFound
from secops.scanning import FileResult, ScanConfig, Scanner, Verdict
from secops.services import audit, content, monitor, suppressions
from secops.services.audit import AuditContext
from secops.services.jobs import create_job
from secops.services.quarantine import quarantine_file
from secops.services.storage import BlobStore, StagedBlob

if TYPE_CHECKING:
    from secops.services.scan_recording import ScanView

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
        reduced_magic=settings.scan_reduced_magic,
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


def complete_from_cache(*, session: Session, scan: ScanResult, cached: ScanResult
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
    # Durable and atomic; for content already stored, a copy is kept until the commit,
    # in case retention removes it meanwhile (see services.content).
    store.commit_all(staged, keep=True)
    content.hold(session, store, staged)
    out = Submission()
    cache = {} if rescan else newest_cached(session=session, sha256s=[b.sha256 for b in staged],
                                            ruleset_version=ruleset_version)
    for sha256 in suppressions.with_scan_history(session=session, sha256s=cache):
        del cache[sha256]  # scanned again: suppressions made or ended since apply
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
            rows, found[scan.id] = complete_from_cache(session=session, scan=scan, cached=cached)
            if scan.verdict == Verdict.MALICIOUS.value:
                quarantine_file(session=session, store=store, sha256=scan.sha256)
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
