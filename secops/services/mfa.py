"""Second factors: TOTP (RFC 6238) and single-use backup codes.

TOTP: 160-bit secrets, SHA-1, 6 digits, 30-second steps, one step of clock drift either
way. The secret is stored encrypted (AES-GCM, key derived from ``storage_key``, the
user id as associated data). A code is accepted once: acceptance is a conditional
update that moves ``totp_last_step`` forward, so a replayed code, or any code of an
earlier step, is refused even by another API process at the same moment.

Backup codes: ten random codes of 50 bits (``xxxxx-xxxxx``, base32), kept as HMAC-SHA256
digests; using one marks it used with a conditional update (single use under races).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import string
import time
from urllib.parse import quote

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.console_models import User, UserBackupCode
from secops.errors import InvalidInput
from secops.services.storage import derive_key

STEP = 30
DIGITS = 6
BACKUP_CODES = 10
ISSUER = "SecOps"
_ALPHABET = "".join(c for c in string.ascii_lowercase + string.digits if c not in "lo01")


def _aead() -> AESGCM:
    secret = get_settings().secret("storage_key").get_secret_value()
    return AESGCM(derive_key(secret, b"secops console totp secrets"))


def _seal(user_id: str, secret: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead().encrypt(nonce, secret, user_id.encode())


def _open(user_id: str, sealed: bytes) -> bytes:
    return _aead().decrypt(sealed[:12], sealed[12:], user_id.encode())


def _totp(secret: bytes) -> TOTP:
    # RFC 6238's default and what authenticator apps support; HMAC-SHA1 is not broken.
    return TOTP(secret, DIGITS, SHA1(), STEP, enforce_key_length=True)  # noqa: S303  # nosec B303


def begin_totp(*, session: Session, user: User) -> str:
    """A new, unconfirmed TOTP secret for ``user``; returns its otpauth:// URI for the QR code."""
    secret = os.urandom(20)
    user.totp_secret = _seal(user.id, secret)
    user.totp_confirmed = False
    user.totp_last_step = None
    session.flush()
    return provisioning_uri(user, secret)


def provisioning_uri(user: User, secret: bytes) -> str:
    label = quote(f"{ISSUER}:{user.name}", safe="")
    b32 = base64.b32encode(secret).decode().rstrip("=")
    return (f"otpauth://totp/{label}?secret={b32}&issuer={ISSUER}&algorithm=SHA1"
            f"&digits={DIGITS}&period={STEP}")


def pending_uri(user: User) -> str | None:
    if user.totp_secret is None or user.totp_confirmed:
        return None
    return provisioning_uri(user, _open(user.id, user.totp_secret))


def code_at(secret: bytes, when: float) -> str:
    return _totp(secret).generate(int(when)).decode()


def _clean(code: str) -> str:
    code = code.replace(" ", "").strip()
    return code if len(code) == DIGITS and code.isdigit() else ""


def _accept(*, session: Session, user: User, code: str, now: float | None) -> bool:
    code = _clean(code)
    if user.totp_secret is None or not code:
        return False
    secret = _open(user.id, user.totp_secret)
    now = time.time() if now is None else now
    current = int(now) // STEP
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(code_at(secret, step * STEP), code):
            result = session.execute(
                update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None),
                                                           User.totp_last_step < step))
                .values(totp_last_step=step).execution_options(synchronize_session=False))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                user.totp_last_step = step
                return True
            return False  # this step (or a later one) was used already: a replay
    return False


def confirm_totp(*, session: Session, user: User, code: str, now: float | None = None) -> None:
    """Confirm a pending TOTP secret with a code from the authenticator app."""
    if user.totp_secret is None or user.totp_confirmed:
        raise InvalidInput("there is no authenticator app waiting for confirmation")
    if not _accept(session=session, user=user, code=code, now=now):
        raise InvalidInput("that code is not valid; enter the current 6-digit code from the app")
    user.totp_confirmed = True
    session.flush()


def verify_totp(*, session: Session, user: User, code: str, now: float | None = None) -> bool:
    """True once per valid code of a confirmed secret (replays and old steps are False)."""
    if not user.totp_confirmed:
        return False
    return _accept(session=session, user=user, code=code, now=now)


def _backup_key() -> bytes:
    secret = get_settings().secret("api_key_hmac").get_secret_value()
    return derive_key(secret, b"secops console backup codes")


def _backup_digest(user_id: str, code: str) -> str:
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    return hmac.new(_backup_key(), f"{user_id}:{normal}".encode(), hashlib.sha256).hexdigest()


def new_backup_codes(*, session: Session, user: User) -> list[str]:
    """Ten new codes (shown once); any earlier codes stop working."""
    session.execute(delete(UserBackupCode).where(UserBackupCode.user_id == user.id))
    codes = []
    for _ in range(BACKUP_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    session.add_all(UserBackupCode(user_id=user.id, digest=_backup_digest(user.id, c))
                    for c in codes)
    session.flush()
    return codes


def use_backup_code(*, session: Session, user: User, code: str) -> bool:
    """True if ``code`` is one of the user's unused codes; it is then used up."""
    if not code or len(code) > 40:
        return False
    digest = _backup_digest(user.id, code)
    row = session.scalar(select(UserBackupCode.id).where(
        UserBackupCode.user_id == user.id, UserBackupCode.digest == digest,
        UserBackupCode.used_at.is_(None)))
    if row is None:
        return False
    result = session.execute(update(UserBackupCode).where(
        UserBackupCode.id == row, UserBackupCode.used_at.is_(None)).values(used_at=utcnow())
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]
