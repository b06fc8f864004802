"""Request and response bodies of /v1/certs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from secops.api.schemas import JobRead, Strict

Tags = list[str]


class EndpointCreate(Strict):
    host: str = Field(..., min_length=1, max_length=255)
    port: int = Field(443, ge=1, le=65535)
    sni: str | None = Field(None, min_length=1, max_length=255)
    owner: str | None = Field(None, max_length=120)
    tags: Tags = Field(default_factory=list, max_length=32)
    pins: list[str] = Field(default_factory=list, max_length=8,
                            description="accepted SPKI pins (pin-sha256, base64): current and backup")


class FileCreate(Strict):
    path: str = Field(..., min_length=1, max_length=4096)
    owner: str | None = Field(None, max_length=120)
    tags: Tags = Field(default_factory=list, max_length=32)
    pins: list[str] = Field(default_factory=list, max_length=8)


class TargetUpdate(Strict):
    owner: str | None = Field(None, max_length=120)
    tags: Tags | None = Field(None, max_length=32)
    pins: list[str] | None = Field(None, max_length=8)
    enabled: bool | None = None


class CertificateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    target_id: str
    target: str = ""
    position: int
    fingerprint: str
    spki_sha256: str
    subject: str
    issuer: str
    serial: str
    sans: list[str]
    not_before: datetime
    not_after: datetime
    key_type: str
    key_bits: int | None
    signature_algorithm: str
    days_left: float
    change: str
    current: bool
    findings: list[dict[str, Any]]
    first_seen_at: datetime
    last_seen_at: datetime


class TargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    key: str
    host: str | None
    port: int | None
    sni: str | None
    path: str | None
    owner: str | None
    tags: list[str]
    pins: list[str]
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_scan_at: datetime | None
    last_error: str | None
    last_findings: list[dict[str, Any]]
    certificates: list[CertificateRead] = Field(default_factory=list)


class TargetList(BaseModel):
    items: list[TargetRead]
    total: int
    limit: int
    offset: int


class CertificateList(BaseModel):
    items: list[CertificateRead]
    total: int
    limit: int
    offset: int


class CertScanCreate(Strict):
    target_ids: list[str] | None = Field(None, min_length=1, max_length=10_000)
    tag: str | None = Field(None, min_length=1, max_length=64)


class CertScanRead(BaseModel):
    job: JobRead


class IssueCreate(Strict):
    csr: str = Field(..., min_length=100, max_length=20_000, description="PEM certificate signing request")
    profile: str = Field("client", pattern="^(server|client)$")
    lifetime_hours: float = Field(24, ge=0.1, le=2160)
    common_name: str | None = Field(None, min_length=1, max_length=64)
    sans: list[str] | None = Field(None, max_length=100)


class IssuedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    serial: str
    common_name: str
    profile: str
    sans: list[str]
    fingerprint: str
    spki_sha256: str
    not_before: datetime
    not_after: datetime
    requested_by: str
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None


class IssueRead(IssuedRead):
    certificate: str = ""
    chain: str = ""


class RevokeCreate(Strict):
    reason: str = Field("unspecified", min_length=1, max_length=200)


class DeploymentCreate(Strict):
    name: str = Field(..., min_length=1, max_length=100)
    common_name: str = Field(..., min_length=1, max_length=64)
    sans: list[str] = Field(..., min_length=1, max_length=100)
    target_id: str | None = Field(None, max_length=36,
                                  description="inventoried endpoint that must serve it after the reload")
    cert_path: str = Field(..., min_length=2, max_length=4096)
    key_path: str = Field(..., min_length=2, max_length=4096)
    chain_path: str | None = Field(None, min_length=2, max_length=4096)
    reload_argv: list[str] = Field(default_factory=list, max_length=64)
    lifetime_hours: float = Field(24, ge=0.1, le=2160, description="internal CA only")
    reuse_key: bool = False
    issuer: str = Field("internal", pattern="^(internal|acme)$")
    acme_challenge: str | None = Field(None, pattern="^(http-01|dns-01)$")
    acme_webroot: str | None = Field(None, min_length=2, max_length=4096)
    acme_dns_hook: list[str] | None = Field(None, max_length=64)
    acme_dns_provider: str | None = Field(None, max_length=64, pattern="^[a-z][a-z0-9_-]*$",
                                          description="a secops.dns_providers plugin ('hook' is built in)")
    acme_dns_settings: dict[str, Any] | None = Field(None, description="the provider's settings (no secrets)")
    enabled: bool = True


class DeploymentUpdate(Strict):
    """Only the fields given change; ``null`` clears ``chain_path``, ``target_id``,
    ``acme_webroot`` and the DNS-01 provider fields."""

    cert_path: str | None = Field(None, min_length=2, max_length=4096)
    key_path: str | None = Field(None, min_length=2, max_length=4096)
    chain_path: str | None = Field(None, min_length=2, max_length=4096)
    reload_argv: list[str] | None = Field(None, max_length=64)
    enabled: bool | None = None
    target_id: str | None = Field(None, max_length=36)
    lifetime_hours: float | None = Field(None, ge=0.1, le=2160)
    acme_webroot: str | None = Field(None, min_length=2, max_length=4096)
    acme_dns_hook: list[str] | None = Field(None, max_length=64)
    acme_dns_provider: str | None = Field(None, max_length=64, pattern="^[a-z][a-z0-9_-]*$")
    acme_dns_settings: dict[str, Any] | None = None


class DeploymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    issuer: str
    common_name: str
    sans: list[str]
    target_id: str | None
    cert_path: str
    key_path: str
    chain_path: str | None
    reload_argv: list[str]
    lifetime_hours: float
    reuse_key: bool
    acme_challenge: str | None
    acme_webroot: str | None
    acme_dns_hook: list[str]
    acme_dns_provider: str | None
    acme_dns_settings: dict[str, Any] | None
    enabled: bool
    ari_renew_at: datetime | None
    ari_next_check: datetime | None
    ari_explanation_url: str | None
    next_attempt_at: datetime | None
    status: str
    serial: str | None
    fingerprint: str | None
    not_before: datetime | None
    not_after: datetime | None
    last_deployed_at: datetime | None
    last_error: str | None
    created_by: str
    created_at: datetime


class RenewCreate(Strict):
    deployment_ids: list[str] | None = Field(None, min_length=1, max_length=1000)
    force: bool = False
