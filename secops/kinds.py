"""The registry of job kinds: what each kind accepts, which queue runs it, how long it may take.

The API validates ``params`` against a kind's model before a job row exists, and
``tasks.routing`` derives Celery queues, routes and time limits from this table, so a
kind is declared once. Job families add their kinds here as they are built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from secops.errors import InvalidInput

QUEUES = ("default", "scan", "dlp", "privacy", "certs", "anomaly", "audit", "system")
# "system" carries the platform's own short tasks (alert delivery, the reaper, key-use
# flushes): a flood of user jobs on "default" does not sit in front of them.
# Heavy queues run long, CPU-bound jobs: their workers prefetch one message at a time so a
# long scan never sits on messages another worker could take. Light queues prefetch more.
HEAVY_QUEUES = ("scan", "dlp", "anomaly")
LIGHT_QUEUES = tuple(q for q in QUEUES if q not in HEAVY_QUEUES)
LIGHT_PREFETCH = 4


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PingParams(Params):
    """Diagnostics: echoes its params; ``sleep`` holds the worker, ``fail`` makes the job fail."""

    message: str | None = Field(None, max_length=1000)
    sleep: float = Field(0.0, ge=0.0, le=600.0)
    fail: bool = False


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    params: type[Params]
    time_limit: int
    description: str
    submittable: bool = True
    roles: frozenset[str] | None = None  # who may submit it (None: every role with jobs:submit)
    single: bool = False  # at most one queued or running job of this kind at a time

    def validate(self, params: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return self.params.model_validate(params or {}).model_dump(mode="json")
        except ValidationError as exc:
            raise InvalidInput(
                f"invalid params for {self.name}",
                details={"errors": _describe(exc)},
            ) from None


def _describe(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "params", "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    if kind.queue not in QUEUES:
        raise ValueError(f"unknown queue {kind.queue}")
    KINDS[kind.name] = kind
    return kind


class AuditVerifyParams(Params):
    """Verify the audit hash chain; no parameters."""


class AlertDeliverParams(Params):
    alert_id: str = Field(..., max_length=36)


SHA256 = r"^[0-9a-f]{64}$"
MAX_SCANS_PER_JOB = 64


class ScanFileParams(Params):
    """Scan stored files: the scan records made at upload (``scan_ids``, or one
    ``scan_id``), or a stored file named by ``sha256`` (then ``rescan`` skips the cached
    verdict). An upload's files are spread over a few such jobs, several files each."""

    scan_id: str | None = Field(None, max_length=36)
    scan_ids: list[Annotated[str, Field(max_length=36)]] | None = Field(
        None, min_length=1, max_length=MAX_SCANS_PER_JOB)
    sha256: str | None = Field(None, pattern=SHA256)
    filename: str = Field("", max_length=255)
    rescan: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> ScanFileParams:
        if sum(x is not None for x in (self.scan_id, self.scan_ids, self.sha256)) != 1:
            raise ValueError("give exactly one of scan_id, scan_ids and sha256")
        return self


def allowed_directory(path: str, allowed: list[Path], *, purpose: str = "scanning",
                      setting: str = "SECOPS_SCAN_ALLOWED_DIRS") -> Path:
    """``path`` resolved (symlinks followed) if it lies under an allowlisted directory;
    the error names what the directories are for and the ``setting`` that lists them."""
    if not os.path.isabs(path):
        raise ValueError("path must be absolute")
    resolved = Path(os.path.realpath(path))
    for root in allowed:
        base = Path(os.path.realpath(root))
        if resolved == base or base in resolved.parents:
            return resolved
    raise ValueError(f"path is not under a directory allowed for {purpose} ({setting})")


class ScanDirectoryParams(Params):
    """Scan the new or changed files under an allowlisted directory."""

    path: str = Field(..., min_length=1, max_length=4096)

    @field_validator("path")
    @classmethod
    def _allowed(cls, value: str) -> str:
        from secops.config import get_settings

        allowed_directory(value, get_settings().scan_allowed_dirs)
        return value


class DlpClassifyParams(Params):
    """Classify a document: the DLP scan record made at submission (``dlp_scan_id``), or
    a stored file named by ``sha256``."""

    dlp_scan_id: str | None = Field(None, max_length=36)
    sha256: str | None = Field(None, pattern=SHA256)
    filename: str = Field("", max_length=255)

    @model_validator(mode="after")
    def _one_target(self) -> DlpClassifyParams:
        if (self.dlp_scan_id is None) == (self.sha256 is None):
            raise ValueError("give exactly one of dlp_scan_id and sha256")
        return self


class AnomalyIngestParams(Params):
    """Read new log lines and detect: a batch sent to the API (``batch_id``), or without it
    the configured log files and SecOps' own security events."""

    batch_id: str | None = Field(None, max_length=36)


register(JobKind("system.ping", "default", PingParams, 660, "echo the params back (diagnostics)"))
register(JobKind("audit.verify", "audit", AuditVerifyParams, 600,
                 "verify the audit log's hash chain and report the first broken link",
                 roles=frozenset({"admin", "auditor"}), single=True))
register(JobKind("alerts.deliver", "system", AlertDeliverParams, 120,
                 "deliver an alert to the webhook sink (created by the monitor only)",
                 submittable=False))
register(JobKind("scan.file", "scan", ScanFileParams, 600,
                 "scan a stored file (type checks, YARA, archives, documents, reputation)"))
register(JobKind("scan.directory", "scan", ScanDirectoryParams, 900,
                 "scan new or changed files under an allowlisted directory"))
register(JobKind("dlp.classify", "dlp", DlpClassifyParams, 600,
                 "find PII, PCI, PHI and secrets in a stored file or submitted text"))
register(JobKind("anomaly.ingest", "anomaly", AnomalyIngestParams, 900,
                 "read new log lines (files, API batches, own events) and detect anomalies"))


class PrivacyRequestParams(Params):
    """Work on a verified data subject request (created by /v1/privacy/requests only)."""

    request_id: str = Field(..., max_length=36)


for _name, _what in (("privacy.export", "export a data subject's rows into an encrypted bundle"),
                     ("privacy.erase", "erase a data subject's personal data, verify, sign a receipt"),
                     ("privacy.rectify", "rectify a data subject's personal fields (Art 16, 19)")):
    register(JobKind(_name, "privacy", PrivacyRequestParams, 600, _what, submittable=False))


class PrivacyStoreParams(Params):
    """One store's share of a verified request (created by ``privacy.erase`` or
    ``privacy.export`` only)."""

    request_id: str = Field(..., max_length=36)
    store: str = Field(..., max_length=200)


register(JobKind("privacy.erase_store", "privacy", PrivacyStoreParams, 600,
                 "erase and verify one store for an erasure request (a sub-job of privacy.erase)",
                 submittable=False))
register(JobKind("privacy.export_store", "privacy", PrivacyStoreParams, 600,
                 "export one store for an access request (a sub-job of privacy.export)",
                 submittable=False))
register(JobKind("privacy.rectify_store", "privacy", PrivacyStoreParams, 600,
                 "rectify one store for a rectification request (a sub-job of privacy.rectify)",
                 submittable=False))


class PrivacyRetentionParams(Params):
    """Apply the personal-data map's retention_days; ``dry_run`` only counts."""

    dry_run: bool = False


register(JobKind("privacy.retention", "privacy", PrivacyRetentionParams, 1800,
                 "erase rows past their table's retention_days (schedule it; dry_run counts)"))


class ComplianceEvaluateParams(Params):
    """Evaluate the compliance matrix's live checks; no parameters."""


register(JobKind("compliance.evaluate", "audit", ComplianceEvaluateParams, 300,
                 "evaluate the compliance matrix (SOC 2, ISO 27001, GDPR) from live checks"))


def get_kind(name: str) -> JobKind:
    kind = KINDS.get(name)
    if kind is None or not kind.submittable:
        raise InvalidInput(f"unknown job kind {name!r}", details={"known": sorted(submittable())})
    return kind


def submittable() -> list[str]:
    return [k.name for k in KINDS.values() if k.submittable]


from secops import kinds_certs  # noqa: E402,F401  (registers the certificate family's kinds)
