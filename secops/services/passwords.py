"""Human passwords, where they appear, are stored only as argon2id hashes.

This is the one way a human password (the console's users) is hashed and checked, so
nobody reaches for a fast hash. Parameters are argon2-cffi's RFC 9106 low-memory profile
(argon2id, 64 MiB, 3 passes, 4 lanes: above OWASP's minimum of 19 MiB, 2 passes, 1
lane); :func:`needs_rehash` says when a stored hash predates the current parameters.

:func:`check_policy` is the whole password policy: 12 to 1,024 characters, not one of
the common passwords shipped with the package (Django's list of 20,000, compared
case-insensitively), not the account's own name; no composition rules.
:func:`dummy_verify` spends the time of one verification, for unknown accounts.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

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


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    data = resources.files("secops.services").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode().splitlines()
                     if line.strip())


def check_policy(password: str, account: str | None = None) -> None:
    """InvalidInput, with the reason, for a password the policy refuses."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(f"passwords are {MIN_LENGTH} to {MAX_LENGTH} characters")
    lowered = password.strip().lower()
    if lowered in common_passwords():
        raise InvalidInput("this password is on the list of commonly used passwords; choose another")
    if account and lowered == account.strip().lower():
        raise InvalidInput("the password may not be the account name")


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("dummy password for timing only")


def dummy_verify(password: str) -> None:
    """Verify against a throwaway hash: an unknown account costs what a known one does."""
    verify_password(_dummy_hash(), password[:MAX_LENGTH] or "x")
