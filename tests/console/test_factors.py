"""TOTP (RFC 6238) and backup codes: each code is accepted once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from secops.db.console_models import User, UserBackupCode
from secops.db.session import session_scope
from secops.services import mfa
from secops.services import users as user_service


def rfc6238(secret: bytes, when: float) -> str:
    """An independent RFC 6238 / 4226 implementation (the oracle)."""
    counter = struct.pack(">Q", int(when) // 30)
    mac = hmac.new(secret, counter, hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def secret_of(uri: str) -> bytes:
    b32 = parse_qs(urlparse(uri).query)["secret"][0]
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


def test_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) -> last 6 digits
    assert mfa.code_at(b"12345678901234567890", 59) == "287082"
    assert rfc6238(b"12345678901234567890", 59) == "287082"


def test_totp_enrolment_and_single_use(sqlite_env):
    with session_scope() as session:
        user = user_service.create_user(session=session, name="t", role="admin",
                                        created_by="t").user
        uri = mfa.begin_totp(session=session, user=user)
        assert uri.startswith("otpauth://totp/SecOps%3At?")
        secret = secret_of(uri)
        assert len(secret) == 20
        assert user.totp_secret is not None and secret not in user.totp_secret
        now = time.time()
        assert not mfa.verify_totp(session=session, user=user, code=rfc6238(secret, now), now=now)
        mfa.confirm_totp(session=session, user=user, code=rfc6238(secret, now), now=now)
        # the confirmation code was used: the same code again is a replay
        assert not mfa.verify_totp(session=session, user=user, code=rfc6238(secret, now), now=now)
        later = now + 30
        assert mfa.verify_totp(session=session, user=user, code=rfc6238(secret, later), now=later)
        assert not mfa.verify_totp(session=session, user=user, code=rfc6238(secret, later), now=later)
        # an older step is refused after a newer one was used, a far one always
        assert not mfa.verify_totp(session=session, user=user, code=rfc6238(secret, now), now=later)
        far = later + 120
        assert not mfa.verify_totp(session=session, user=user, code=rfc6238(secret, later + 300),
                                   now=far)
        for junk in ("", "12345", "abcdef", "1234567", " " * 6):
            assert not mfa.verify_totp(session=session, user=user, code=junk, now=far)


def test_backup_codes_single_use_and_hashed(sqlite_env):
    with session_scope() as session:
        user = user_service.create_user(session=session, name="b", role="analyst",
                                        created_by="t").user
        codes = mfa.new_backup_codes(session=session, user=user)
        assert len(codes) == 10 and len(set(codes)) == 10
        stored = [r.digest for r in session.scalars(select(UserBackupCode))]
        assert not any(c.replace("-", "") in d for c in codes for d in stored)
        assert mfa.use_backup_code(session=session, user=user, code=codes[3].upper())
        assert not mfa.use_backup_code(session=session, user=user, code=codes[3])
        assert not mfa.use_backup_code(session=session, user=user, code="aaaaa-aaaaa")
        assert user_service.factor_summary(session=session, user=user)["backup_codes"] == 9
        fresh = mfa.new_backup_codes(session=session, user=user)
        assert not mfa.use_backup_code(session=session, user=user, code=codes[0])
        assert mfa.use_backup_code(session=session, user=user, code=fresh[0])
        assert session.get(User, user.id) is not None
