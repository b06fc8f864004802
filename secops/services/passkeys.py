"""Passkeys (WebAuthn, with the ``webauthn`` package): registration and authentication.

The relying party is the console's configured origin (``console_origin``); its host is
the RP id. User verification is required for both ceremonies, registration asks for a
discoverable credential (so a passkey alone can sign in), and the authenticator's sign
counter must grow whenever it reports one (a clone shows as a counter that does not).
Challenges are made here and kept by the caller in the browser's server-side session.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.console_models import User, UserPasskey
from secops.errors import InvalidInput

RP_NAME = "SecOps"
MAX_PASSKEYS = 10
FAILED = "the passkey could not be verified"


def relying_party() -> tuple[str, str]:
    """(RP id, expected origin) from the configured console origin."""
    origin = get_settings().console_origin_value()
    return urlsplit(origin).hostname or "localhost", origin


def registration_options(*, session: Session, user: User) -> tuple[str, str]:
    """(options JSON for ``navigator.credentials.create``, challenge base64url)."""
    rp_id, _ = relying_party()
    existing = session.scalars(select(UserPasskey).where(UserPasskey.user_id == user.id)).all()
    if len(existing) >= MAX_PASSKEYS:
        raise InvalidInput(f"at most {MAX_PASSKEYS} passkeys per user")
    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_name=user.name, user_display_name=user.name,
        user_id=user.webauthn_user_id.encode(), challenge=secrets.token_bytes(32),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                             for p in existing])
    return options_to_json(options), bytes_to_base64url(options.challenge)


def register(*, session: Session, user: User, credential: dict[str, Any], challenge: str,
             name: str) -> UserPasskey:
    rp_id, origin = relying_party()
    name = (name or "passkey").strip()[:100] or "passkey"
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id, expected_origin=origin, require_user_verification=True)
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError):
        raise InvalidInput("the passkey could not be registered") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if session.scalar(select(UserPasskey.id).where(UserPasskey.credential_id == credential_id)):
        raise InvalidInput("this passkey is registered already")
    passkey = UserPasskey(user_id=user.id, credential_id=credential_id,
                          public_key=verified.credential_public_key,
                          sign_count=verified.sign_count, name=name)
    session.add(passkey)
    session.flush()
    return passkey


def authentication_options(*, session: Session, user: User | None) -> tuple[str, str]:
    """Options for ``navigator.credentials.get``: the user's passkeys, or any discoverable
    passkey for a passkey-only sign-in (``user`` None)."""
    rp_id, _ = relying_party()
    allow = []
    if user is not None:
        allow = [PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
                 for p in session.scalars(select(UserPasskey)
                                          .where(UserPasskey.user_id == user.id))]
    options = generate_authentication_options(
        rp_id=rp_id, challenge=secrets.token_bytes(32), allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options), bytes_to_base64url(options.challenge)


def authenticate(*, session: Session, credential: dict[str, Any], challenge: str,
                 user: User | None) -> tuple[User, UserPasskey]:
    """The user and passkey behind a valid assertion; InvalidInput (one message) otherwise.

    With ``user`` given (second factor after a password), the passkey must be that
    user's; without, the assertion's user handle must name the passkey's owner.
    """
    rp_id, origin = relying_party()
    credential_id = str(credential.get("id", "")) if isinstance(credential, dict) else ""
    passkey = session.scalar(select(UserPasskey).where(UserPasskey.credential_id == credential_id))
    if passkey is None or len(credential_id) > 1400:
        raise InvalidInput(FAILED)
    owner = session.get(User, passkey.user_id)
    if owner is None or owner.disabled_at is not None or owner.password_hash is None:
        raise InvalidInput(FAILED)
    if user is not None and owner.id != user.id:
        raise InvalidInput(FAILED)
    handle = (credential.get("response") or {}).get("userHandle")
    if user is None:
        try:
            if not handle or base64url_to_bytes(handle) != owner.webauthn_user_id.encode():
                raise InvalidInput(FAILED)
        except (ValueError, TypeError):
            raise InvalidInput(FAILED) from None
    try:
        verified = verify_authentication_response(
            credential=json.loads(json.dumps(credential)),
            expected_challenge=base64url_to_bytes(challenge), expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count, require_user_verification=True)
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError):
        raise InvalidInput(FAILED) from None
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = utcnow()
    session.flush()
    return owner, passkey


def list_passkeys(*, session: Session, user: User) -> list[UserPasskey]:
    return list(session.scalars(select(UserPasskey).where(UserPasskey.user_id == user.id)
                                .order_by(UserPasskey.created_at)))


def remove(*, session: Session, user: User, passkey_id: str) -> UserPasskey:
    passkey = session.get(UserPasskey, passkey_id)
    if passkey is None or passkey.user_id != user.id:
        raise InvalidInput("no such passkey")
    session.delete(passkey)
    session.flush()
    return passkey
