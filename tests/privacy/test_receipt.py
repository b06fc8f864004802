"""Erasure receipts: Ed25519 signatures checked with the public key alone; tampering found."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secops.cli.privacy import privacy
from secops.privacy import ReceiptError
from secops.privacy.receipt import load_private_key, public_pem, sign, verify
from tests.privacy import shop
from tests.privacy.conftest import Keys, Shop

BODY = {
    "version": 1,
    "receipt_id": "r-1",
    "subject_hash": "hmac-sha256:" + "ab" * 32,
    "actions": [{"store": "shop", "table": "users", "strategy": "hash", "rows": 1}],
}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(privacy, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_signature_holds_for_the_exact_body_only() -> None:
    key = Ed25519PrivateKey.generate()
    receipt = sign(dict(BODY), key)
    assert verify(receipt, key.public_key()) == BODY
    # the signature is Ed25519 over the canonical JSON, checkable with cryptography directly
    canonical = json.dumps(BODY, sort_keys=True, separators=(",", ":")).encode()
    key.public_key().verify(base64.b64decode(receipt["signature"]["value"]), canonical)

    for path, value in [
        (("actions", 0, "rows"), 2),
        (("subject_hash",), "hmac-sha256:" + "cd" * 32),
        (("receipt_id",), "r-2"),
    ]:
        forged = json.loads(json.dumps(receipt))
        target = forged
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(ReceiptError, match="signature does not match: the receipt was altered"):
            verify(forged, key.public_key())
    extra = {**receipt, "note": "added later"}
    with pytest.raises(ReceiptError, match="altered"):
        verify(extra, key.public_key())
    with pytest.raises(ReceiptError, match="signed with another key"):
        verify(receipt, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ReceiptError, match="no signature object"):
        verify(BODY, key.public_key())


def test_signing_keys_in_pem_hex_and_base64() -> None:
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    for text in (seed.hex(), base64.b64encode(seed).decode()):
        assert public_pem(load_private_key(text)) == public_pem(key)
    with pytest.raises(ReceiptError, match="not an Ed25519 key"):
        load_private_key("not a key")


def test_receipt_verify_command(shop_db: Shop, keys: Keys, tmp_path: Path) -> None:
    out_file = tmp_path / "erase.json"
    code, out, _ = run(
        "erase",
        "--local",
        "--map",
        str(shop_db.map_path),
        "--identity",
        f"email={shop.ALICE_EMAIL}",
        "--json",
    )
    assert code == 0
    out_file.write_text(out)
    code, text, _ = run("receipt", "verify", str(out_file))  # key from PRIVACY_SIGNING_KEY
    receipt = json.loads(out)["receipt"]
    assert (code, text) == (
        0,
        f"valid: receipt {receipt['receipt_id']} (verified, {len(receipt['actions'])} actions)\n",
    )
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(receipt))
    code, _, _ = run("receipt", "verify", "--public-key", str(keys.public_pem_path), str(receipt_file))
    assert code == 0
    code, pem, _ = run("receipt", "public-key")
    assert pem == keys.public_pem_path.read_text()

    receipt["actions"][0]["rows"] += 1
    receipt_file.write_text(json.dumps(receipt))
    code, text, err = run("receipt", "verify", "--public-key", str(keys.public_pem_path), str(receipt_file))
    assert (code, text, err) == (1, "", "invalid: signature does not match: the receipt was altered\n")

    other = tmp_path / "other.pub"
    other.write_text(public_pem(Ed25519PrivateKey.generate()))
    receipt["actions"][0]["rows"] -= 1
    receipt_file.write_text(json.dumps(receipt))
    code, _, err = run("receipt", "verify", "--public-key", str(other), str(receipt_file))
    assert (code, err) == (1, "invalid: signed with another key (key_id does not match the public key)\n")

    receipt_file.write_text("{not json")
    code, _, err = run("receipt", "verify", str(receipt_file))
    assert (code, err) == (2, f"error: {receipt_file}: not a readable JSON file (JSONDecodeError)\n")


def test_erase_without_secrets_is_a_clear_error(
    shop_db: Shop, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = shop.dump(shop_db.engine)
    monkeypatch.delenv("SECOPS_PRIVACY_SIGNING_KEY")
    code, out, err = run(
        "erase",
        "--local",
        "--map",
        str(shop_db.map_path),
        "--identity",
        f"email={shop.ALICE_EMAIL}",
        "--json",
    )
    assert (code, out) == (2, "")
    assert err == (
        "error: secret PRIVACY_SIGNING_KEY is not set (SECOPS_PRIVACY_SIGNING_KEY or its _FILE; "
        "see docs/privacy.md)\n"
    )
    monkeypatch.setenv("SECOPS_PRIVACY_HMAC", "short")
    code, _, err = run(
        "erase",
        "--local",
        "--map",
        str(shop_db.map_path),
        "--identity",
        f"email={shop.ALICE_EMAIL}",
        "--json",
    )
    assert (code, err) == (2, "error: secret PRIVACY_HMAC is shorter than 32 characters\n")
    assert shop.dump(shop_db.engine) == before
