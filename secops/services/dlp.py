"""DLP on the platform: submissions, the ``dlp.classify`` job, stored findings, redaction.

Nothing here stores or logs a matched value. Submitted text is kept encrypted in the
storage's ``dlp-text`` area only until it is classified; uploads are stored like scanned
files (content-addressed, encrypted). A stored finding keeps its type, category,
offsets, part, score, policy action and level, a masked preview and an HMAC-SHA256 of
the normalised value keyed with the ``dlp_hmac`` secret (or, when that is not set, a
key derived from ``storage_key`` with HKDF), so one secret can be recognised across
documents without being kept. A document with PCI, PHI or SECRET findings raises a
``dlp_violation`` security event of high severity, one with only PII findings a medium
one; an alert rule fires when one submitter causes more than 20 in an hour.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import DlpFinding, DlpScan, Job, ScanResult, StoredFile
from secops.dlp import Classifier, DlpError, DocumentResult, Limits, Policy, redact
from secops.dlp.archives import SafeArchiveWalker
from secops.dlp.baseline import Suppression, filter_document
from secops.errors import InvalidInput, NotFound
from secops.services import content, monitor
from secops.services.jobs import create_job
from secops.services.quarantine import quarantine_file
from secops.services.sandbox import LimitExceeded, run_limited
from secops.services.storage import BlobStore, StagedBlob, derive_key, valid_sha256
from secops.services.suppressions import active_rules

DLP_KIND = "dlp.classify"
VIOLATION = "dlp_violation"
HIGH_CATEGORIES = frozenset({"PCI", "PHI", "SECRET"})
monitor.register_rule(monitor.AlertRule(
    "dlp.violations.submitter", frozenset({VIOLATION}), "submitted_by", 20, 3600, "high",
    "many documents with sensitive data from one submitter"))


def hmac_key(settings: Settings) -> bytes:
    """The key of stored findings' hashes: ``dlp_hmac``, else derived from ``storage_key``."""
    if settings.dlp_hmac is not None:
        return derive_key(settings.dlp_hmac.get_secret_value(), b"dlp hmac v1")
    return derive_key(settings.secret("storage_key").get_secret_value(), b"dlp hmac v1")


@lru_cache(maxsize=4)
def _classifier(policy_files: tuple[Path, ...], key: bytes) -> Classifier:
    policy = Policy.load(*policy_files) if policy_files else Policy.default()
    limits = Limits()
    return Classifier(policy, hmac_key=key, limits=limits,
                      archive_walker=SafeArchiveWalker.from_limits(limits))


def get_classifier(settings: Settings) -> Classifier:
    return _classifier(tuple(settings.dlp_policy_files), hmac_key(settings))


def classify_bytes(data: bytes, filename: str, *, settings: Settings) -> tuple[DocumentResult | None,
                                                                               str | None]:
    """Classify a file's bytes; (None, reason) when it cannot be read as a document.

    Extraction and classification run in a child process with CPU and memory limits
    (``SECOPS_DLP_EXTRACT_CPU_SECONDS``, ``SECOPS_DLP_EXTRACT_MEMORY_MB``)."""
    classifier = get_classifier(settings)
    try:
        if settings.dlp_extract_cpu_seconds == 0:
            return classifier.scan_bytes(data, filename), None
        return run_limited(lambda: classifier.scan_bytes(data, filename),
                           cpu_seconds=settings.dlp_extract_cpu_seconds,
                           memory_bytes=settings.dlp_extract_memory_mb << 20), None
    except DlpError as exc:
        return None, str(exc)[:300]
    except LimitExceeded as exc:
        return None, f"document not read: {exc.message}"


def violation(document: DocumentResult) -> str | None:
    """The severity of a document's ``dlp_violation`` event, or None for no event."""
    categories = document.categories
    if categories & HIGH_CATEGORIES:
        return "high"
    if "PII" in categories:
        return "medium"
    return None


# -- submission ------------------------------------------------------------------------------


def _new_scan(session: Session, *, source: str, submitted_by: str, sha256: str | None = None,
              filename: str | None = None) -> DlpScan:
    scan = DlpScan(source=source, sha256=sha256, filename=(filename or None) and filename[:255],
                   status="pending", blocked=False, truncated=False, finding_count=0,
                   categories=[], errors=[], submitted_by=submitted_by, created_at=utcnow())
    session.add(scan)
    session.flush()
    return scan


def _with_job(session: Session, scan: DlpScan) -> tuple[DlpScan, tuple[str, str]]:
    job = create_job(session=session, kind=DLP_KIND, params={"dlp_scan_id": scan.id},
                     submitted_by=scan.submitted_by)
    session.flush()
    scan.job_id = job.id
    return scan, (job.id, job.kind)


def submit_text(*, session: Session, store: BlobStore, text: str, name: str | None,
                submitted_by: str, max_chars: int) -> tuple[DlpScan, tuple[str, str]]:
    """Keep the text encrypted until the job has classified it, then drop it."""
    if len(text) > max_chars:
        raise InvalidInput(f"text is longer than {max_chars} characters")
    scan = _new_scan(session, source="text", submitted_by=submitted_by, filename=name)
    store.put_text(scan.id, text)
    return _with_job(session, scan)


def submit_upload(*, session: Session, store: BlobStore, staged: StagedBlob,
                  submitted_by: str) -> tuple[DlpScan, tuple[str, str]]:
    """Store the file and add its DLP scan, and a scan record: its job checks the file's
    type and scans it for malware (:mod:`secops.services.dlp_checks`) before classifying."""
    store.commit_all([staged], keep=True)
    content.hold(session, store, [staged])  # see services.content
    row = session.get(StoredFile, staged.sha256)
    if row is None:
        session.add(StoredFile(sha256=staged.sha256, size=staged.size, state="stored",
                               created_at=utcnow(), updated_at=utcnow()))
    elif row.state == "deleted":  # an admin deleted it; uploaded again, it is stored again
        row.state, row.updated_at, row.quarantined_at = "stored", utcnow(), None
    scan = _new_scan(session, source="upload", submitted_by=submitted_by, sha256=staged.sha256,
                     filename=staged.filename)
    scan, job = _with_job(session, scan)
    file_scan = ScanResult(sha256=staged.sha256, filename=staged.filename[:255], size=staged.size,
                           source="upload", status="pending", cached=False, job_id=job[0],
                           submitted_by=submitted_by, created_at=utcnow())
    session.add(file_scan)
    session.flush()
    scan.scan_id = file_scan.id
    return scan, job


def submit_stored(*, session: Session, sha256: str, filename: str | None,
                  submitted_by: str) -> tuple[DlpScan, tuple[str, str]]:
    content.lock(session, [valid_sha256(sha256)])  # see services.content
    stored = session.get(StoredFile, sha256)
    if stored is None or stored.state == "deleted":
        raise NotFound("stored file not found")
    scan = _new_scan(session, source="stored", submitted_by=submitted_by, sha256=sha256,
                     filename=filename)
    return _with_job(session, scan)


def get_scan(*, session: Session, dlp_scan_id: str) -> DlpScan:
    scan = session.get(DlpScan, dlp_scan_id)
    if scan is None:
        raise NotFound("DLP scan not found")
    return scan


def findings(*, session: Session, dlp_scan_id: str) -> list[DlpFinding]:
    return list(session.scalars(select(DlpFinding).where(DlpFinding.dlp_scan_id == dlp_scan_id)
                                .order_by(DlpFinding.start, DlpFinding.id)).all())


# -- the dlp.classify job ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifyPlan:
    dlp_scan_id: str
    source: str
    sha256: str | None
    filename: str
    done: dict[str, Any] | None = None


def _summary(scan: DlpScan, **more: Any) -> dict[str, Any]:
    return {"dlp_scan_id": scan.id, "classification": scan.classification,
            "findings": scan.finding_count, "categories": scan.categories,
            "blocked": scan.blocked, "status": scan.status, **more}


def plan_classify(*, session: Session, job: Job) -> ClassifyPlan:
    params = job.params
    if params.get("dlp_scan_id"):
        scan = get_scan(session=session, dlp_scan_id=str(params["dlp_scan_id"]))
    else:
        scan = session.scalar(select(DlpScan).where(DlpScan.job_id == job.id)) or _new_scan(
            session, source="stored", submitted_by=job.submitted_by,
            sha256=valid_sha256(str(params["sha256"])), filename=str(params.get("filename") or ""))
    if scan.status != "pending":
        return ClassifyPlan(scan.id, scan.source, scan.sha256, scan.filename or "",
                            done=_summary(scan))
    scan.job_id = job.id
    return ClassifyPlan(scan.id, scan.source, scan.sha256, scan.filename or "")


def execute_classify(plan: ClassifyPlan, *, store: BlobStore,
                     settings: Settings) -> tuple[DocumentResult | None, str | None]:
    """Classify without the database; (None, reason) for a document that cannot be read."""
    if plan.source == "text":
        text = store.read_text(plan.dlp_scan_id)
        if text is None:
            return None, "the submitted text is no longer available"
        return get_classifier(settings).scan_text(text, path=plan.filename or None), None
    if plan.sha256 is None:
        raise InvalidInput("DLP scan names no file")
    return classify_bytes(store.read(plan.sha256), plan.filename or plan.sha256,
                          settings=settings)


@dataclass
class Stored:
    """What recording a DLP result did besides storing it."""

    deliveries: list[tuple[str, str]]
    suppressed: int = 0
    quarantined: bool = False


def _store_result(session: Session, scan: DlpScan, document: DocumentResult | None,
                  error: str | None, kv: redis.Redis | None,
                  store: BlobStore | None = None,
                  rules: list[Suppression] | None = None) -> Stored:
    """Store a result without its suppressed findings (``rules``: the DLP suppressions
    in force, read here when not given); a document whose findings say ``block`` has its
    stored file quarantined (as a malicious scan verdict does)."""
    scan.completed_at = utcnow()
    if document is None:
        scan.status, scan.errors = "failed", [error or "unreadable"]
        return Stored([])
    if rules is None:
        rules = active_rules(session=session, family="dlp")
    document, suppressed = filter_document(document, rules, scan.filename)
    scan.status, scan.classification = "complete", document.classification
    scan.blocked, scan.truncated = document.blocked, document.truncated
    scan.errors = [e[:300] for e in document.errors][:20]
    scan.finding_count = len(document.findings)
    scan.categories = sorted(document.categories)
    session.add_all([
        DlpFinding(dlp_scan_id=scan.id, type=f.type[:64], category=f.category, start=f.start,
                   end=f.end, part=f.part[:500], score=round(f.score, 3), action=f.action,
                   level=f.level, digest=f.digest, preview=f.preview[:200])
        for f in document.findings])
    quarantined = False
    if document.blocked and scan.sha256 is not None and store is not None:
        quarantined = quarantine_file(session=session, store=store, sha256=scan.sha256)
    out = Stored([], suppressed, quarantined)
    severity = violation(document)
    if severity is None:
        return out
    details = {"subject": scan.id, "dlp_scan_id": scan.id, "source": scan.source,
               "sha256": scan.sha256, "submitted_by": scan.submitted_by,
               "classification": scan.classification, "categories": scan.categories,
               "types": dict(Counter(f.type for f in document.findings)),
               "blocked": scan.blocked, "quarantined": quarantined, "suppressed": suppressed}
    outcome = monitor.log_security_event(VIOLATION, details, severity, session=session, kv=kv)
    out.deliveries = outcome.deliveries
    return out


def record_classification(*, session: Session, plan: ClassifyPlan, document: DocumentResult | None,
                          error: str | None, kv: redis.Redis | None,
                          store: BlobStore | None = None
                          ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    scan = get_scan(session=session, dlp_scan_id=plan.dlp_scan_id)
    if scan.status != "pending":
        return _summary(scan), []
    stored = _store_result(session, scan, document, error, kv, store)
    return _summary(scan, suppressed=stored.suppressed,
                    quarantined=stored.quarantined), stored.deliveries


def reject(*, session: Session, plan: ClassifyPlan, reason: str) -> dict[str, Any]:
    """End a DLP scan unclassified: its file was refused (malicious, or unreadable)."""
    scan = get_scan(session=session, dlp_scan_id=plan.dlp_scan_id)
    if scan.status == "pending":
        scan.status, scan.errors, scan.completed_at = "failed", [reason[:300]], utcnow()
    return _summary(scan)


def record_for_scan(*, session: Session, scan_id: str, sha256: str, filename: str,
                    submitted_by: str, job_id: str | None, document: DocumentResult | None,
                    error: str | None, kv: redis.Redis | None, store: BlobStore | None = None,
                    rules: list[Suppression] | None = None) -> tuple[DlpScan, Stored]:
    """The DLP record of a file the scanning job accepted (``SECOPS_DLP_ON_SCAN``);
    ``rules`` as for the other records (a job of many files reads them once)."""
    scan = _new_scan(session, source="scan", submitted_by=submitted_by, sha256=sha256,
                     filename=filename)
    scan.scan_id, scan.job_id = scan_id, job_id
    return scan, _store_result(session, scan, document, error, kv, store, rules)


# -- redaction -------------------------------------------------------------------------------


def redact_text(text: str, *, style: str, settings: Settings) -> tuple[str, DocumentResult]:
    """The text with every finding replaced, and the findings (no values) it replaced."""
    if len(text) > settings.dlp_max_text_chars:
        raise InvalidInput(f"text is longer than {settings.dlp_max_text_chars} characters")
    document = get_classifier(settings).scan_text(text)
    return redact(text, document.findings, style), document  # type: ignore[arg-type]
