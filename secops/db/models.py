"""Models for jobs, API keys, schedules, idempotency records, the security layer
(audit log with its chain head and archive checkpoints, security events, alerts), and
the scanning and DLP families (stored files, scan results and findings, scanned paths of
directory scans, DLP scans and findings).

A job row is the source of truth for a unit of work: the Celery task id equals the job
id, the task layer moves ``status`` along ``queued -> running -> succeeded | failed |
cancelled`` with conditional updates, and ``attempts`` counts deliveries that started
work (Redis keeps no delivery count).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from secops.db.base import Base, UTCDateTime, new_id, utcnow


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


TERMINAL_STATUSES = tuple(s.value for s in JobStatus if s.terminal)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_kind_created", "kind", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued.value)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    submitted_by: Mapped[str] = mapped_column(String(80))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiKey(Base):
    """An API key: only an HMAC-SHA256 digest of the secret is kept, found by its prefix."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    allowed_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    # After a rotation the previous secret keeps working until previous_valid_until.
    previous_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # never the digest
        return f"ApiKey(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r}, role={self.role!r})"


class Schedule(Base):
    """A recurring job: a cron expression or an interval, read by the beat scheduler."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cron: Mapped[str | None] = mapped_column(String(100), nullable=True)
    interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    total_run_count: Mapped[int] = mapped_column(Integer, default=0)


class IdempotencyRecord(Base):
    """The first request made with an ``Idempotency-Key``: its body hash and the jobs it made."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    job_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One link of the tamper-evident audit chain (see ``secops.services.audit``).

    ``seq`` is the position in the chain; ``hash`` is HMAC-SHA256 over every other
    field including ``prev_hash``, so no row can be changed, removed, added or moved
    without the key.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The single row (id 1) every append locks: it serialises writers and names the tail."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    # HMAC of (last_seq, last_hash) with the audit key: a head rewound by hand does not match
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditCheckpoint(Base):
    """Written when old entries are archived and pruned: the chain resumes after it."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    through_seq: Mapped[int] = mapped_column(Integer, unique=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    archived_count: Mapped[int] = mapped_column(Integer)
    archive: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    mac: Mapped[str] = mapped_column(String(64))


class SecurityEvent(Base):
    """Something security-relevant happened (failed authentication, rate limit, ...)."""

    __tablename__ = "security_events"
    __table_args__ = (Index("ix_security_events_kind_created", "kind", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """A rule fired. Repeats of an open alert with the same ``dedup_key`` are grouped into it."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_dedup_status", "dedup_key", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    dedup_key: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="open")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class StoredFile(Base):
    """A file kept content-addressed by SHA-256, encrypted at rest (``services.storage``).

    ``state`` is ``stored``, ``quarantined`` (moved to the quarantine area after a
    malicious verdict), ``released`` (an admin let it out) or ``deleted`` (an admin
    destroyed it; the row stays as the record).
    """

    __tablename__ = "stored_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="stored")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ScanResult(Base):
    """One file scanned (or answered from the cache): created ``pending`` at submission."""

    __tablename__ = "scan_results"
    __table_args__ = (Index("ix_scan_results_sha256_ruleset", "sha256", "ruleset_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    mime: Mapped[str | None] = mapped_column(String(128), nullable=True)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    ruleset_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Why this file could not be scanned (status ``failed``) while the rest of its job went on.
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    cached_from: Mapped[str | None] = mapped_column(String(36), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ScanFinding(Base):
    __tablename__ = "scan_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("scan_results.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)


class ScannedPath(Base):
    """What a directory scan last saw at a path, so the next run scans only changes."""

    __tablename__ = "scanned_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path_hash: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    scan_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DlpScan(Base):
    """One document classified by DLP: text, an upload, a stored file or a scanned file."""

    __tablename__ = "dlp_scans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    scan_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    classification: Mapped[str | None] = mapped_column(String(16), nullable=True)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    finding_count: Mapped[int] = mapped_column(Integer, default=0)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    submitted_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DlpFinding(Base):
    """A DLP finding as stored: never the value, only a keyed hash and a masked preview."""

    __tablename__ = "dlp_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dlp_scan_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("dlp_scans.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    part: Mapped[str] = mapped_column(String(500))
    score: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    preview: Mapped[str] = mapped_column(String(200))


class LegalHold(Base):
    """Content under legal hold: retention keeps the file, its scans and DLP scans."""

    __tablename__ = "legal_holds"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


from secops.db.cert_models import (  # noqa: E402,F401  (certificate family)
    CertAcmeOrder,
    CertDeployment,
    CertIssued,
    CertNotice,
    CertSeen,
    CertTarget,
)


class PrivacyRequest(Base):
    """A data subject request (GDPR Art 15-21). The subject's identities, contact address
    and rectification values are kept only sealed (AES-GCM) and dropped once the request
    is done; duplicates are found by the keyed ``identity_hash``."""

    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_status_due", "status", "due_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    identity_hash: Mapped[str] = mapped_column(String(80), index=True)
    identity_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(80))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    code_sends: Mapped[list[str]] = mapped_column(JSON, default=list)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    bundle_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    download_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    download_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ConsentRecord(Base):
    """One entry of the append-only consent ledger (``secops.services.consents``): a subject
    (keyed hash only) gave or withdrew consent for a purpose. ``hash`` is HMAC-SHA256 over
    every other field including ``prev_hash``, as in the audit log."""

    __tablename__ = "privacy_consents"
    __table_args__ = (Index("ix_privacy_consents_subject_purpose", "subject_hash", "purpose"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    subject_hash: Mapped[str] = mapped_column(String(80))
    purpose: Mapped[str] = mapped_column(String(200))
    lawful_basis: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ConsentChainHead(Base):
    """The single row (id 1) every consent append locks: serialises writers, names the tail."""

    __tablename__ = "privacy_consent_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class PrivacyBreach(Base):
    """A personal-data breach (Art 33/34) and its 72-hour notification clock."""

    __tablename__ = "privacy_breaches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    aware_at: Mapped[datetime] = mapped_column(UTCDateTime)
    nature: Mapped[str] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    subjects_approx: Mapped[int] = mapped_column(Integer)
    records_approx: Mapped[int] = mapped_column(Integer)
    consequences: Mapped[str] = mapped_column(Text)
    measures: Mapped[str] = mapped_column(Text)
    dpo_contact: Mapped[str] = mapped_column(String(320))
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="open")
    authority_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    subjects_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delay_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    alerts_raised: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnomalyCheckpoint(Base):
    """How far anomaly ingestion has read one log content (keyed by its first line's hash),
    or SecOps' own security events (``fingerprint = 'security-events'``, ``offset`` the
    last event id read)."""

    __tablename__ = "anomaly_checkpoints"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AnomalyBaseline(Base):
    """The rolling history of one rate baseline: the engine's state for a rule and entity
    (``*`` for every entity of the rule): the running interval and the EWMA of the past
    ones. Written at the end of each detection run, read when Redis no longer holds the
    window, forgotten after ``BASELINE_RETENTION_DAYS`` without an update."""

    __tablename__ = "anomaly_baselines"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)   # sha256 of rule + entity
    rule: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(400))
    state: Mapped[list[Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AnomalyBatch(Base):
    """A batch of log lines sent to ``POST /v1/anomaly/ingest``, kept until its job ran."""

    __tablename__ = "anomaly_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(200))
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    lines: Mapped[list[str]] = mapped_column(JSON, default=list)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PrivacyStoreErasure(Base):
    """Write-ahead record of one store transaction of an erasure sub-job, written just
    before the store commits: the actions (row counts) and, sealed, the keys of the rows
    it changed. A later run of the sub-job (a worker killed after the store committed)
    reads the rows back to learn whether that transaction committed, and counts it in
    the receipt if so; one that did not commit is marked ``void``. Dropped with the
    request's identities when the request finishes."""

    __tablename__ = "privacy_store_erasures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    store: Mapped[str] = mapped_column(String(120))
    job_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), default="prepared")  # prepared | void
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


from secops.db.feedback_models import Suppression  # noqa: E402,F401  (DLP and scan feedback)
