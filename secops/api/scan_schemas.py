"""Request and response models of the scanning, quarantine and DLP routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from secops.api.schemas import Strict
from secops.kinds import SHA256


class ScanFindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    rule_id: str
    severity: str
    description: str
    location: str | None


class ScanRead(BaseModel):
    id: str
    job_id: str | None
    status: str  # pending, complete or failed (the job failed: see error)
    error: str | None = None
    sha256: str
    filename: str
    size: int
    source: str
    path: str | None
    verdict: str | None
    mime: str | None
    description: str | None
    ruleset_version: str | None
    cached: bool
    cached_from: str | None
    file_state: str | None  # stored, quarantined, released or deleted (uploads)
    submitted_by: str
    created_at: datetime
    completed_at: datetime | None
    findings: list[ScanFindingRead]


class ScanBatchRead(BaseModel):
    scans: list[ScanRead]


class StoredFileRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sha256: str
    size: int
    state: str
    created_at: datetime
    updated_at: datetime
    quarantined_at: datetime | None


class DlpScanCreate(Strict):
    """Classify ``text`` (kept encrypted until classified, then dropped) or a stored file."""

    text: str | None = Field(None, max_length=10_000_000)
    sha256: str | None = Field(None, pattern=SHA256)
    name: str | None = Field(None, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> DlpScanCreate:
        if (self.text is None) == (self.sha256 is None):
            raise ValueError("give exactly one of text and sha256")
        return self


class DlpFindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int  # what POST /v1/suppressions {"dlp_finding_id": ...} names
    type: str
    category: str
    start: int
    end: int
    part: str
    score: float
    action: str
    level: str
    preview: str
    # No digest: keyed hashes of values answered to any caller would let one compare
    # the digests of guessed values with a finding's and recover it (an HMAC oracle).


class DlpScanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    job_id: str | None
    status: str  # pending, complete or failed
    error: str | None = None
    source: str
    sha256: str | None
    filename: str | None
    scan_id: str | None
    classification: str | None
    blocked: bool
    truncated: bool
    finding_count: int
    categories: list[str]
    errors: list[str]
    submitted_by: str
    created_at: datetime
    completed_at: datetime | None
    # The stored file's state (an upload or stored file): ``quarantined`` when a finding's
    # policy action is ``block`` or the upload's malware scan found it malicious.
    file_state: str | None = None
    # The verdict of an upload's file scan (its record is ``scan_id`` under /v1/scans).
    verdict: str | None = None
    findings: list[DlpFindingRead] = Field(default_factory=list)


class RedactCreate(Strict):
    text: str = Field(..., max_length=10_000_000)
    style: Literal["type", "mask", "policy"] = "policy"


class RedactedFinding(BaseModel):
    type: str
    category: str
    start: int
    end: int


class RedactRead(BaseModel):
    text: str
    classification: str
    findings: list[RedactedFinding]


MULTIPART_FILES: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "array",
                                    "items": {"type": "string", "format": "binary"}}}}}},
    }
}


NO_NUL = r"^[^\x00]*$"  # PostgreSQL text holds no NUL


class SuppressionCreate(Strict):
    """Exactly one of: ``dlp_finding_id`` (that finding's value, for its detector),
    ``detector`` (with ``path_pattern``: that detector on matching files) or ``scan_id``
    (that content's findings, or only those of ``rule_id``)."""

    dlp_finding_id: int | None = Field(None, ge=1, le=2**31 - 1)
    detector: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{1,63}$")
    scan_id: str | None = Field(None, min_length=1, max_length=36, pattern=NO_NUL)
    rule_id: str | None = Field(None, min_length=1, max_length=100, pattern=NO_NUL)
    path_pattern: str | None = Field(None, min_length=1, max_length=500, pattern=NO_NUL)
    reason: str = Field(..., min_length=3, max_length=500, pattern=NO_NUL)
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> SuppressionCreate:
        given = [x for x in (self.dlp_finding_id, self.detector, self.scan_id) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dlp_finding_id, detector and scan_id")
        if self.rule_id is not None and self.scan_id is None:
            raise ValueError("rule_id goes with scan_id")
        return self


class SuppressionRead(BaseModel):
    """A suppression as the API shows it: never the value digest, only whether it has one."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    family: str
    detector: str | None
    sha256: str | None
    path_pattern: str | None
    by_value: bool
    reason: str
    origin: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    active: bool


class BaselineImportRead(BaseModel):
    added: int
    existing: int
    expired: int
    unusable: int
