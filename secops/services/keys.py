"""API keys: 256-bit random secrets, kept only as HMAC-SHA256 digests, found by a prefix.

A key reads ``secops_<prefix>_<secret>``: the 8-character prefix is visible and
indexed, the secret is 32 random bytes (base64url). The stored digest is
HMAC-SHA256(server key, whole key), with the server key from the secret reader
(``api_key_hmac``), so a database dump alone cannot be used to log in or to test
guesses offline. Every failure, whatever its cause, is the same AuthenticationFailed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import ApiKey
from secops.errors import AuthenticationFailed, InvalidInput, NotFound
from secops.kinds import KINDS

ROLES = ("admin", "analyst", "auditor", "service")
KEY_PATTERN = re.compile(r"^secops_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class IssuedKey:
    """A newly created key: ``plaintext`` exists only here and is shown once."""

    record: ApiKey
    plaintext: str

    def __repr__(self) -> str:
        return f"IssuedKey(record={self.record!r}, plaintext='**********')"


def digest(plaintext: str) -> str:
    server_key = get_settings().secret("api_key_hmac").get_secret_value().encode()
    return hmac.new(server_key, plaintext.encode(), hashlib.sha256).hexdigest()


def create_key(
    *,
    session: Session,
    name: str,
    role: str,
    created_by: str,
    allowed_kinds: list[str] | None = None,
    expires_in_days: int | None = None,
) -> IssuedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("key name must be 1 to 100 characters")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    kinds = sorted(set(allowed_kinds or []))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput("unknown job kinds in allowed_kinds", details={"unknown": unknown})
    if role == "service" and not kinds:
        raise InvalidInput("a service key must list the job kinds it may submit")
    days = expires_in_days if expires_in_days is not None else get_settings().api_key_default_days
    if days < 1 or days > 3650:
        raise InvalidInput("expiry must be between 1 and 3650 days")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"secops_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        name=name,
        prefix=prefix,
        digest=digest(plaintext),
        role=role,
        allowed_kinds=kinds,
        created_by=created_by,
        expires_at=utcnow() + timedelta(days=days),
        usage_count=0,
    )
    session.add(record)
    session.flush()
    return IssuedKey(record=record, plaintext=plaintext)


def authenticate(*, session: Session, token: str | None, now: datetime | None = None) -> ApiKey:
    """The live key for ``token``; one AuthenticationFailed for unknown, bad, expired, revoked."""
    match = KEY_PATTERN.match(token or "")
    if match is None:
        raise AuthenticationFailed()
    expected = digest(token or "")
    record = session.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1)))
    # Compare even when there is no record, so timing does not tell whether a prefix exists.
    stored = record.digest if record is not None else "0" * 64
    previous = (record.previous_digest if record is not None else None) or "1" * 64
    now = now or utcnow()
    current_ok = hmac.compare_digest(stored, expected)
    previous_ok = hmac.compare_digest(previous, expected)
    if record is None or not (current_ok or previous_ok):
        raise AuthenticationFailed()
    if not current_ok and (record.previous_valid_until is None
                           or record.previous_valid_until <= now):
        raise AuthenticationFailed()  # a rotated-out secret past its grace period
    if record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
        raise AuthenticationFailed()
    return record


def record_use(*, session: Session, key_id: str) -> None:
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .values(last_used_at=utcnow(), usage_count=ApiKey.usage_count + 1)
    )


def list_keys(*, session: Session, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query).all())


def get_key(*, session: Session, key_id: str) -> ApiKey:
    record = session.get(ApiKey, key_id)
    if record is None:
        record = session.scalar(select(ApiKey).where(ApiKey.prefix == key_id))
    if record is None:
        raise NotFound("API key not found")
    return record


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    """Revoke by id or prefix; takes effect on every API process at the next request."""
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    return record


def rotate_key(*, session: Session, key_id: str, grace_hours: int | None = None) -> IssuedKey:
    """A new secret for the same key (id, prefix, role, usage); the old secret keeps
    working for ``grace_hours`` (default SECOPS_API_KEY_ROTATION_GRACE_HOURS, 24).

    A second rotation within the grace period ends the first old secret at once: only
    the secret just replaced is honoured.
    """
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is not None:
        raise InvalidInput("a revoked key cannot be rotated")
    hours = grace_hours if grace_hours is not None else get_settings().api_key_rotation_grace_hours
    if hours < 0 or hours > 24 * 30:
        raise InvalidInput("grace period must be between 0 and 720 hours")
    now = utcnow()
    plaintext = f"secops_{record.prefix}_{secrets.token_urlsafe(32)}"
    record.previous_digest = record.digest
    record.previous_valid_until = now + timedelta(hours=hours)
    record.digest = digest(plaintext)
    record.rotated_at = now
    session.flush()
    return IssuedKey(record=record, plaintext=plaintext)


def update_key(*, session: Session, key_id: str, name: str | None = None,
               role: str | None = None, allowed_kinds: list[str] | None = None) -> ApiKey:
    """Rename a key, change its role or its job kinds (same rules as at creation)."""
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is not None:
        raise InvalidInput("a revoked key cannot be changed")
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("key name must be 1 to 100 characters")
        record.name = name
    new_role = role if role is not None else record.role
    if new_role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    kinds = sorted(set(allowed_kinds)) if allowed_kinds is not None else list(record.allowed_kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput("unknown job kinds in allowed_kinds", details={"unknown": unknown})
    if new_role == "service" and not kinds:
        raise InvalidInput("a service key must list the job kinds it may submit")
    record.role, record.allowed_kinds = new_role, kinds
    session.flush()
    return record


def has_admin_key(*, session: Session) -> bool:
    now = utcnow()
    return (
        session.scalar(
            select(ApiKey.id).where(
                ApiKey.role == "admin", ApiKey.revoked_at.is_(None), ApiKey.expires_at > now
            ).limit(1)
        )
        is not None
    )
