"""argon2id for human passwords."""

from __future__ import annotations

import pytest

from secops.errors import InvalidInput
from secops.services.passwords import hash_password, needs_rehash, verify_password


def test_argon2id_hash_and_verify():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapl3")
    assert not verify_password("not a hash", "whatever-password")
    assert not needs_rehash(stored)
    assert hash_password("correct horse battery staple") != stored  # salted


def test_password_length_bounds():
    with pytest.raises(InvalidInput):
        hash_password("short")
