"""Models of the certificate family: inventory targets, certificates seen, alert marks.

A :class:`CertTarget` is an endpoint (host, port, SNI) or a file path, with an owner,
tags and SPKI pins. Every distinct certificate a target served is one
:class:`CertSeen` row (its history: first and last seen, what changed); ``current`` marks
the one served at the last scan. A :class:`CertNotice` records that a finding at a
severity was already raised for a certificate, so each threshold alerts once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column

from secops.db.base import Base, UTCDateTime, new_id, utcnow


class CertTarget(Base):
    __tablename__ = "cert_targets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # endpoint | file
    key: Mapped[str] = mapped_column(String(600), unique=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sni: Mapped[str | None] = mapped_column(String(255), nullable=True)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(120), nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    pins: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_scan_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class CertSeen(Base):
    __tablename__ = "cert_seen"
    __table_args__ = (
        UniqueConstraint("target_id", "fingerprint", "position", name="uq_cert_seen_target_fp"),
        Index("ix_cert_seen_target_current", "target_id", "current"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_id: Mapped[str] = mapped_column(String(36), ForeignKey("cert_targets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # index in a file; 0 for endpoints
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    spki_sha256: Mapped[str] = mapped_column(String(44))
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    serial: Mapped[str] = mapped_column(String(80))
    sans: Mapped[list[str]] = mapped_column(JSON, default=list)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    key_type: Mapped[str] = mapped_column(String(16))
    key_bits: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signature_algorithm: Mapped[str] = mapped_column(String(64))
    days_left: Mapped[float] = mapped_column(Float)
    change: Mapped[str] = mapped_column(String(32))
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CertNotice(Base):
    __tablename__ = "cert_notices"
    __table_args__ = (
        UniqueConstraint("target_id", "fingerprint", "finding", "severity", name="uq_cert_notice"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_id: Mapped[str] = mapped_column(String(36), ForeignKey("cert_targets.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    finding: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CertIssued(Base):
    """A certificate the internal CA issued (for listing, renewal and the revocation list)."""

    __tablename__ = "cert_issued"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)  # lower-case hex
    common_name: Mapped[str] = mapped_column(String(255))
    profile: Mapped[str] = mapped_column(String(16))
    sans: Mapped[list[str]] = mapped_column(JSON, default=list)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(44))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class CertDeployment(Base):
    """A certificate SecOps keeps issued and deployed: where its files go, how the service
    reloads, which inventoried endpoint must then serve it."""

    __tablename__ = "cert_deployments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    issuer: Mapped[str] = mapped_column(String(16), default="internal")
    common_name: Mapped[str] = mapped_column(String(255))
    sans: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("cert_targets.id", ondelete="SET NULL"), nullable=True)
    cert_path: Mapped[str] = mapped_column(Text)
    key_path: Mapped[str] = mapped_column(Text)
    chain_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    reload_argv: Mapped[list[str]] = mapped_column(JSON, default=list)
    lifetime_hours: Mapped[float] = mapped_column(Float, default=24.0)
    reuse_key: Mapped[bool] = mapped_column(Boolean, default=False)
    acme_challenge: Mapped[str | None] = mapped_column(String(16), nullable=True)  # http-01 | dns-01
    acme_webroot: Mapped[str | None] = mapped_column(Text, nullable=True)
    acme_dns_hook: Mapped[list[str]] = mapped_column(JSON, default=list)
    # a secops.dns_providers plugin and its (non-secret) settings; None: the hook or the
    # configured default provider
    acme_dns_provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acme_dns_settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    # ARI (RFC 9773): the renewal time chosen in the server's window, when to ask again
    ari_renew_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ari_next_check: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ari_explanation_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    serial: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_deployed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CertAcmeOrder(Base):
    """An ACME order, recorded before it is answered and finalised: a retried or
    redelivered renewal resumes it instead of ordering again. The new key waits in a
    ``.pending`` file (mode 0600) next to the deployed key until the order is deployed."""

    __tablename__ = "cert_acme_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("cert_deployments.id", ondelete="CASCADE"), index=True)
    order_url: Mapped[str] = mapped_column(Text)
    csr_pem: Mapped[str] = mapped_column(Text)
    key_path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="ordered")  # ordered | done | failed
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
