"""Console users: creation with a one-time enrolment link, password sign-in, admin actions.

A user is created without a password; ``create_user`` returns a random enrolment token
(256 bits) that is kept only as an HMAC digest and expires after
``console_enrol_hours``. Enrolling sets the password and clears the token, so a link
works once. Every refusal of a link (unknown, used, expired, disabled user) is the same
message. ``authenticate`` verifies a password in the same time whether or not the
account exists, is disabled or is not enrolled yet (a dummy argon2 verification).

Roles are the API keys' human roles; MFA is required for the roles in
``console_mfa_roles`` (admin by default). Callers audit and commit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.console_models import User, UserBackupCode, UserPasskey
from secops.errors import Conflict, InvalidInput, NotFound
from secops.services import passwords
from secops.services.storage import derive_key

ROLES = ("admin", "analyst", "auditor")
BAD_LINK = "this enrolment link is invalid, already used or expired; ask an admin for a new one"


@dataclass(frozen=True)
class Enrolment:
    """A user and the plaintext of their enrolment token (shown once)."""

    user: User
    token: str

    def __repr__(self) -> str:
        return f"Enrolment(user={self.user!r}, token='**********')"


def _token_key() -> bytes:
    secret = get_settings().secret("api_key_hmac").get_secret_value()
    return derive_key(secret, b"secops console enrolment tokens")


def token_digest(token: str) -> str:
    return hmac.new(_token_key(), token.encode(), hashlib.sha256).hexdigest()


def mfa_required(role: str) -> bool:
    return role in get_settings().console_mfa_roles


def _issue_link(user: User) -> str:
    token = secrets.token_urlsafe(32)
    user.enrol_digest = token_digest(token)
    user.enrol_expires_at = utcnow() + timedelta(hours=get_settings().console_enrol_hours)
    return token


def create_user(*, session: Session, name: str, role: str, created_by: str) -> Enrolment:
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() and ch != " " for ch in name):
        raise InvalidInput("user name must be 1 to 100 characters on one line")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    taken = session.scalar(select(User.id).where(func.lower(User.name) == name.lower()))
    if taken is not None:
        raise Conflict("a user with that name already exists")
    user = User(name=name, role=role, created_by=created_by[:120], totp_confirmed=False,
                webauthn_user_id=secrets.token_urlsafe(32))
    token = _issue_link(user)
    session.add(user)
    session.flush()
    return Enrolment(user, token)


def get_user(*, session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        user = session.scalar(select(User).where(User.name == user_id))
    if user is None:
        raise NotFound("user not found")
    return user


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.created_at)).all())


def user_for_link(*, session: Session, token: str) -> User:
    """The user a live enrolment link belongs to; InvalidInput (one message) otherwise."""
    if not token or len(token) > 100:
        raise InvalidInput(BAD_LINK)
    user = session.scalar(select(User).where(User.enrol_digest == token_digest(token)))
    if (user is None or user.disabled_at is not None or user.enrol_expires_at is None
            or user.enrol_expires_at <= utcnow()):
        raise InvalidInput(BAD_LINK)
    return user


def complete_enrolment(*, session: Session, token: str, password: str) -> User:
    """Set the password of the link's user and spend the link (one use, even in a race)."""
    user = user_for_link(session=session, token=token)
    passwords.check_policy(password, user.name)
    digest = user.enrol_digest
    result = session.execute(
        update(User).where(User.id == user.id, User.enrol_digest == digest)
        .values(enrol_digest=None, enrol_expires_at=None,
                password_hash=passwords.hash_password(password), enrolled_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInput(BAD_LINK)
    session.refresh(user)
    return user


def authenticate(*, session: Session, name: str, password: str) -> User | None:
    """The active, enrolled user with this name and password, else None (same cost)."""
    if len(name) > 100 or len(password) > passwords.MAX_LENGTH:
        passwords.dummy_verify(password)
        return None
    user = session.scalar(select(User).where(func.lower(User.name) == name.strip().lower()))
    if user is None or user.password_hash is None or user.disabled_at is not None:
        passwords.dummy_verify(password)
        return None
    if not passwords.verify_password(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def set_disabled(*, session: Session, user_id: str, disabled: bool) -> User:
    user = get_user(session=session, user_id=user_id)
    user.disabled_at = (user.disabled_at or utcnow()) if disabled else None
    session.flush()
    return user


def reset_factors(*, session: Session, user_id: str, password: bool = False) -> tuple[User, str | None]:
    """Remove the user's TOTP, passkeys and backup codes; with ``password``, also the
    password, and issue a new enrolment link (returned)."""
    user = get_user(session=session, user_id=user_id)
    user.totp_secret, user.totp_confirmed, user.totp_last_step = None, False, None
    session.execute(delete(UserPasskey).where(UserPasskey.user_id == user.id))
    session.execute(delete(UserBackupCode).where(UserBackupCode.user_id == user.id))
    token = None
    if password:
        user.password_hash = None
        token = _issue_link(user)
    session.flush()
    return user, token


def new_link(*, session: Session, user_id: str) -> tuple[User, str]:
    """A fresh enrolment link for a user who has not enrolled yet (the old one dies)."""
    user = get_user(session=session, user_id=user_id)
    if user.password_hash is not None:
        raise Conflict("the user has enrolled; use reset-factors --password instead")
    token = _issue_link(user)
    session.flush()
    return user, token


def factor_summary(*, session: Session, user: User) -> dict[str, int | bool]:
    passkeys = session.scalar(select(func.count()).select_from(UserPasskey)
                              .where(UserPasskey.user_id == user.id)) or 0
    backup = session.scalar(select(func.count()).select_from(UserBackupCode).where(
        UserBackupCode.user_id == user.id, UserBackupCode.used_at.is_(None))) or 0
    return {"totp": bool(user.totp_confirmed), "passkeys": int(passkeys), "backup_codes": int(backup)}


def has_second_factor(*, session: Session, user: User) -> bool:
    summary = factor_summary(session=session, user=user)
    return bool(summary["totp"] or summary["passkeys"])
