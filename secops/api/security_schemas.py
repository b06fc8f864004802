"""Request and response models of the security routes (keys, audit, alerts, events)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from secops.api.schemas import Page, Strict

Role = Literal["admin", "analyst", "auditor", "service"]
Kind = Annotated[str, Field(max_length=64)]


class KeyCreate(Strict):
    name: str = Field(..., min_length=1, max_length=100)
    role: Role = "analyst"
    allowed_kinds: list[Kind] = Field(default_factory=list, max_length=100)
    expires_in_days: int | None = Field(None, ge=1, le=3650,
                                        description="Default SECOPS_API_KEY_DEFAULT_DAYS (90)")


class KeyUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=100)
    role: Role | None = None
    allowed_kinds: list[Kind] | None = Field(None, max_length=100)


class KeyRotate(Strict):
    grace_hours: int | None = Field(None, ge=0, le=720,
                                    description="How long the old secret keeps working "
                                    "(default SECOPS_API_KEY_ROTATION_GRACE_HOURS, 24)")


class KeyRead(BaseModel):
    """A key as listed: never its secret or digest."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    role: str
    allowed_kinds: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    usage_count: int
    rotated_at: datetime | None
    previous_valid_until: datetime | None


class KeyIssued(KeyRead):
    key: str = Field(..., description="The secret, shown only in this response")


class AuditEntryRead(BaseModel):
    seq: int
    time: str
    actor: str
    action: str
    target: str
    request_id: str | None
    client_ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(Page[AuditEntryRead]):
    """A page of audit entries, newest first."""


class AlertRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    rule: str
    severity: str
    title: str
    subject: str
    status: str
    occurrences: int
    details: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class AlertList(Page[AlertRead]):
    """A page of alerts, most recent first."""


class SecurityEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    severity: str
    details: dict[str, Any]
    created_at: datetime

