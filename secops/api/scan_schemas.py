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
