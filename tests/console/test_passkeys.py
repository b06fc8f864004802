"""Passkeys against a software authenticator (the WebAuthn wire format built here with
cbor2 and cryptography, independently of the ``webauthn`` package): registration, sign-in,
and the refusals: another user's passkey, a wrong origin or RP id, no user verification,
a replayed or cloned signature counter, a reused challenge."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from secops.db.console_models import UserPasskey
from secops.db.session import session_scope
from secops.errors import InvalidInput
from secops.services import passkeys
from secops.services import users as user_service
from tests.console.conftest import GOOD

ORIGIN = "https://console.example.org"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    UP, UV, AT = 0x01, 0x04, 0x40

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle = b""

    def _cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def create(self, options: dict, origin: str = ORIGIN, rp_id: str | None = None,
               uv: bool = True) -> dict:
        self.user_handle = unb64(options["user"]["id"])
        client = json.dumps({"type": "webauthn.create", "challenge": options["challenge"],
                             "origin": origin, "crossOrigin": False}).encode()
        flags = self.UP | self.AT | (self.UV if uv else 0)
        attested = (bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id
                    + self._cose())
        auth_data = (hashlib.sha256((rp_id or options["rp"]["id"]).encode()).digest()
                     + bytes([flags]) + struct.pack(">I", self.counter) + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                "type": "public-key", "response": {"clientDataJSON": b64(client),
                                                   "attestationObject": b64(attestation)}}

    def get(self, options: dict, origin: str = ORIGIN, rp_id: str | None = None,
            uv: bool = True, bump: int = 1) -> dict:
        self.counter += bump
        client = json.dumps({"type": "webauthn.get", "challenge": options["challenge"],
                             "origin": origin, "crossOrigin": False}).encode()
        auth_data = (hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
                     + bytes([self.UP | (self.UV if uv else 0)]) + struct.pack(">I", self.counter))
        signature = self.key.sign(auth_data + hashlib.sha256(client).digest(),
                                  ec.ECDSA(hashes.SHA256()))
        return {"id": b64(self.credential_id), "rawId": b64(self.credential_id),
                "type": "public-key",
                "response": {"clientDataJSON": b64(client), "authenticatorData": b64(auth_data),
                             "signature": b64(signature), "userHandle": b64(self.user_handle)}}


@pytest.fixture
def rp(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_CONSOLE_ORIGIN", ORIGIN)
    from secops.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def enrolled(name: str):
    with session_scope() as session:
        enrolment = user_service.create_user(session=session, name=name, role="analyst",
                                             created_by="t")
        user_service.complete_enrolment(session=session, token=enrolment.token, password=GOOD)
        return enrolment.user.id


def register(user_id: str, device: SoftAuthenticator, **kw) -> UserPasskey:
    with session_scope() as session:
        user = user_service.get_user(session=session, user_id=user_id)
        options_json, challenge = passkeys.registration_options(session=session, user=user)
        options = json.loads(options_json)
        assert options["authenticatorSelection"]["userVerification"] == "required"
        assert options["authenticatorSelection"]["residentKey"] == "required"
        return passkeys.register(session=session, user=user, credential=device.create(options, **kw),
                                 challenge=challenge, name="soft")


def sign_in(user_id: str | None, device: SoftAuthenticator, **kw):
    with session_scope() as session:
        user = user_service.get_user(session=session, user_id=user_id) if user_id else None
        options_json, challenge = passkeys.authentication_options(session=session, user=user)
        options = json.loads(options_json)
        assert options["userVerification"] == "required" and options["rpId"] == "console.example.org"
        owner, _ = passkeys.authenticate(session=session, credential=device.get(options, **kw),
                                         challenge=challenge, user=user)
        return owner.id


def test_register_and_sign_in_with_a_counter(rp):
    alice = enrolled("alice")
    device = SoftAuthenticator()
    register(alice, device)
    assert sign_in(None, device) == alice  # passkey alone
    assert sign_in(alice, device) == alice  # as the second factor
    with session_scope() as session:
        assert session.scalar(select(UserPasskey)).sign_count == 2
    second = SoftAuthenticator()
    register(alice, second)  # several passkeys per user
    assert sign_in(alice, second) == alice


@pytest.mark.parametrize("change", [
    {"origin": "https://evil.example"},
    {"rp_id": "evil.example"},
    {"uv": False},
    {"bump": 0},  # the counter did not grow: a cloned authenticator or a replay
])
def test_bad_assertions_are_refused_and_change_nothing(rp, change):
    alice = enrolled("alice")
    device = SoftAuthenticator()
    register(alice, device)
    sign_in(alice, device)
    with pytest.raises(InvalidInput) as err:
        sign_in(alice, device, **change)
    assert err.value.message == passkeys.FAILED
    with session_scope() as session:
        assert session.scalar(select(UserPasskey)).sign_count == 1


def test_another_users_passkey_is_refused(rp):
    alice, bob = enrolled("alice"), enrolled("bob")
    device = SoftAuthenticator()
    register(alice, device)
    with pytest.raises(InvalidInput):
        sign_in(bob, device)  # bob's password, alice's passkey
    device.user_handle = b"someone else"
    with pytest.raises(InvalidInput):
        sign_in(None, device)  # a user handle that does not own the credential


@pytest.mark.parametrize("change", [{"origin": "https://evil.example"}, {"rp_id": "evil.example"},
                                    {"uv": False}])
def test_bad_registrations_are_refused(rp, change):
    alice = enrolled("alice")
    with pytest.raises(InvalidInput):
        register(alice, SoftAuthenticator(), **change)
    with session_scope() as session:
        assert session.scalars(select(UserPasskey)).all() == []


def test_a_challenge_answers_once(rp):
    alice = enrolled("alice")
    device = SoftAuthenticator()
    register(alice, device)
    with session_scope() as session:
        options_json, challenge = passkeys.authentication_options(session=session, user=None)
        other_json, _ = passkeys.authentication_options(session=session, user=None)
        wrong = device.get(json.loads(other_json))  # signed over another challenge
        with pytest.raises(InvalidInput):
            passkeys.authenticate(session=session, credential=wrong, challenge=challenge, user=None)
