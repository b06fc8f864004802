"""Models of the console's people: users, their passkeys and their backup codes.

A user's password is an argon2id hash; the TOTP secret is kept encrypted (AES-GCM under
a key derived from ``storage_key``); backup codes and the one-time enrolment token are
kept only as HMAC-SHA256 digests. ``totp_last_step`` is the last 30-second step whose
code was accepted: a code is accepted once, by a conditional update on it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from secops.db.base import Base, UTCDateTime, new_id, utcnow


class User(Base):
    """A person who signs in to the console, with one of the API keys' human roles."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enrol_digest: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    enrol_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    webauthn_user_id: Mapped[str] = mapped_column(String(64))
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # never a hash or a secret
        return f"User(id={self.id!r}, name={self.name!r}, role={self.role!r})"


class UserPasskey(Base):
    """A WebAuthn credential (passkey) registered by a user."""

    __tablename__ = "user_passkeys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UserBackupCode(Base):
    """One single-use backup code, kept as an HMAC digest."""

    __tablename__ = "user_backup_codes"
    __table_args__ = (UniqueConstraint("user_id", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
