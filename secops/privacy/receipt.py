"""Ed25519-signed erasure receipts.

A receipt is a JSON object (see :func:`secops.privacy.erase.receipt_body`) plus a
``signature``: ``{"alg": "Ed25519", "key_id", "value"}`` where ``value`` is the base64
signature over the receipt's canonical JSON without the ``signature`` member (keys
sorted, no spaces, UTF-8) and ``key_id`` the first 16 hex digits of the SHA-256 of the
raw public key. Anyone holding the public key can check a receipt; only the holder of
the private key can make one. Changing any byte of the body breaks the signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from secops.privacy.errors import ReceiptError


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 key, or a 32-byte seed in hex or base64."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ReceiptError("the signing key is not an Ed25519 key")
            return key
        seed = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
        return Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError, binascii.Error):
        raise ReceiptError(
            "the signing key is not an Ed25519 key (PEM, or a 32-byte seed in hex or base64)"
        ) from None


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 public key, or its 32 raw bytes in hex or base64."""
    text = data.decode("ascii", "replace").strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ReceiptError("the public key is not an Ed25519 key")
            return key
        raw = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError, binascii.Error):
        raise ReceiptError(
            "the public key is not an Ed25519 key (PEM, or 32 bytes in hex or base64)"
        ) from None


def public_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The receipt: ``body`` plus its signature."""
    if "signature" in body:
        raise ReceiptError("the body already carries a signature")
    signature = key.sign(canonical(body))
    return {
        **body,
        "signature": {
            "alg": "Ed25519",
            "key_id": key_id(key.public_key()),
            "value": base64.b64encode(signature).decode("ascii"),
        },
    }


def verify(receipt: Any, public: Ed25519PublicKey) -> dict[str, Any]:
    """Return the receipt's body when its signature is good; raise :class:`ReceiptError`."""
    if not isinstance(receipt, dict) or not isinstance(receipt.get("signature"), dict):
        raise ReceiptError("not a signed receipt (no signature object)")
    sig = receipt["signature"]
    if sig.get("alg") != "Ed25519":
        raise ReceiptError("unsupported signature algorithm")
    if sig.get("key_id") != key_id(public):
        raise ReceiptError("signed with another key (key_id does not match the public key)")
    try:
        value = base64.b64decode(str(sig.get("value", "")), validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptError("the signature is not base64") from None
    body = {k: v for k, v in receipt.items() if k != "signature"}
    try:
        public.verify(value, canonical(body))
    except InvalidSignature:
        raise ReceiptError("signature does not match: the receipt was altered") from None
    return body
