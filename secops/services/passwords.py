"""Human passwords, where they appear, are stored only as argon2id hashes.

Machines use API keys; people use the web console's accounts. This helper is the one
way a human password (a console account's) is hashed and checked, so nobody reaches for
a fast hash. Parameters are argon2-cffi's RFC 9106 low-memory
profile; :func:`needs_rehash` says when a stored hash predates the current parameters.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY

from secops.errors import InvalidInput

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
MIN_LENGTH = 12
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    """An ``$argon2id$`` PHC string; InvalidInput for a password too short or too long."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(f"passwords are {MIN_LENGTH} to {MAX_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if ``password`` matches; False for a mismatch or a malformed stored hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
