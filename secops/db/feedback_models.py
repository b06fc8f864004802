"""Suppressions: an analyst's word that a DLP finding or a scan finding is not a problem.

A DLP suppression names a detector (``detector``) and optionally the keyed digest of one
value (``digest``, the same HMAC the stored findings carry; never returned by the API)
and a file-name pattern (``path_pattern``, shell-style). A scan suppression names the
content (``sha256``), optionally one rule (``detector``) and a pattern. Each has a
``reason``, an optional ``expires_at`` and is revoked by setting ``revoked_at`` (the row
stays as the record).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from secops.db.base import Base, UTCDateTime, new_id, utcnow


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (Index("ix_suppressions_family_sha256", "family", "sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family: Mapped[str] = mapped_column(String(8))  # dlp | scan
    detector: Mapped[str | None] = mapped_column(String(100), nullable=True)
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    path_pattern: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(120))  # dlp_finding:<id> | scan:<id> | baseline | rule
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
