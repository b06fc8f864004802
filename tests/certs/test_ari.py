"""ARI (RFC 9773) on the client side: the certID of the RFC's own example, windows,
Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from secops.certs import ari
from secops.certs.model import CertsError
from tests.certs.pki import ec_key

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _cert(serial: int, aki: bytes | None) -> x509.Certificate:
    key = ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=90)))
    if aki is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_cert_id_of_the_rfc_example() -> None:
    # RFC 9773, section 4.1: keyIdentifier 69:88:5B:...:C8:D4 and serial 00:87:65:43:21
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert ari.cert_id(_cert(0x87654321, aki)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert ari.cert_id(_cert(0x7654321, aki)).endswith(".B2VDIQ")  # no high bit: no zero byte
    with pytest.raises(CertsError, match="no Authority Key Identifier"):
        ari.cert_id(_cert(5, None))


def test_window_explanation_and_retry_after() -> None:
    body = {"suggestedWindow": {"start": "2026-12-10T00:00:00Z", "end": "2026-12-11T00:00:00+00:00"},
            "explanationURL": "https://ca.example/why"}
    info = ari.parse_renewal_info(body, {"Retry-After": "7200"}, NOW)
    assert (info.start, info.end) == (datetime(2026, 12, 10, tzinfo=UTC), datetime(2026, 12, 11, tzinfo=UTC))
    assert (info.explanation_url, info.next_check) == ("https://ca.example/why", NOW + timedelta(hours=2))
    chosen = [ari.choose_renewal_time(info, NOW, random.Random(seed)) for seed in range(50)]
    assert all(info.start <= c <= info.end for c in chosen) and len(set(chosen)) == 50
    passed = ari.parse_renewal_info({"suggestedWindow": {"start": "2026-12-01T00:00:00Z",
                                                         "end": "2026-12-02T00:00:00Z"}}, {}, NOW)
    assert ari.choose_renewal_time(passed, NOW) == NOW
    assert passed.next_check == NOW + timedelta(hours=6)  # no Retry-After: six hours
    assert ari.retry_after({"retry-after": "5"}, NOW) == NOW + timedelta(minutes=1)
    assert ari.retry_after({"Retry-After": "999999"}, NOW) == NOW + timedelta(days=1)
    assert ari.retry_after({"Retry-After": "Mon, 07 Dec 2026 15:00:00 GMT"}, NOW) == NOW + timedelta(hours=3)
    for bad in ({}, {"suggestedWindow": {"start": "2026-12-10T00:00:00Z"}},
                {"suggestedWindow": {"start": "2026-12-10T00:00:00Z", "end": "2026-12-09T00:00:00Z"}},
                {"suggestedWindow": {"start": "2026-12-10T00:00:00", "end": "2026-12-11T00:00:00"}}):
        with pytest.raises(CertsError, match="renewalInfo"):
            ari.parse_renewal_info(bad, {}, NOW)
