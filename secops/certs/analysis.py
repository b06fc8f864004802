"""Facts and findings about one X.509 certificate.

:func:`describe` turns a parsed certificate into a :class:`CertReport` (names, dates,
key, signature, SPKI pin) with the findings that depend on the certificate alone:
validity window, expiry thresholds, renewal due, weak key, weak signature, self-signed.
Findings that depend on how it was served (chain, trust, hostname, pins, protocol) are
added by the TLS and check modules.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

from secops.certs.model import CertReport, Finding, Thresholds

WEAK_SIGNATURES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID._RSA_WITH_SHA1: "SHA-1",
}


def spki_sha256(cert: x509.Certificate) -> str:
    """The HPKP ``pin-sha256`` value: base64 of SHA-256 over the DER SubjectPublicKeyInfo."""
    return key_pin(cert.public_key())


def key_pin(public_key: PublicKeyTypes) -> str:
    """The ``pin-sha256`` of a public key, as :func:`spki_sha256` gives it for a certificate."""
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def key_facts(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None


def signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return oid._name if oid._name and oid._name != "Unknown OID" else oid.dotted_string


def sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    names: list[str] = [str(n) for n in ext.get_values_for_type(x509.DNSName)]
    names += [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]
    return names


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s name and key signed ``cert``."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (UnsupportedAlgorithm, ValueError):
        return _verify_legacy(cert, issuer)
    except (InvalidSignature, TypeError):
        return False
    return True


_LEGACY_HASHES: dict[x509.ObjectIdentifier, type[hashes.SHA1] | type[hashes.MD5]] = {
    SignatureAlgorithmOID.RSA_WITH_MD5: hashes.MD5, SignatureAlgorithmOID.RSA_WITH_SHA1: hashes.SHA1,
    SignatureAlgorithmOID._RSA_WITH_SHA1: hashes.SHA1, SignatureAlgorithmOID.ECDSA_WITH_SHA1: hashes.SHA1,
}


def _verify_legacy(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Signature check for MD5/SHA-1 signatures, which ``verify_directly_issued_by`` refuses."""
    algorithm = _LEGACY_HASHES.get(cert.signature_algorithm_oid)
    if algorithm is None:
        return False
    try:
        key = issuer.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm()))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


def is_self_signed(cert: x509.Certificate) -> bool:
    return issued_by(cert, cert)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return repr(name)


def describe(cert: x509.Certificate, *, target: str, now: datetime,
             thresholds: Thresholds, served_as_leaf: bool) -> CertReport:
    """A report for ``cert`` with its certificate-only findings.

    ``served_as_leaf`` is true for an endpoint's leaf: a self-signed leaf is then always
    a finding, while in a file only a self-signed certificate that is not a CA is (a
    bundle of roots is not a problem).
    """
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    days_left = round((not_after - now).total_seconds() / 86400, 4)
    key_type, key_bits = key_facts(cert)
    self_signed = is_self_signed(cert)
    report = CertReport(
        target=target, subject=_name(cert.subject), sans=sans(cert), issuer=_name(cert.issuer),
        serial=format(cert.serial_number, "x"), not_before=_iso(not_before),
        not_after=_iso(not_after), days_left=days_left, key_type=key_type, key_bits=key_bits,
        signature_algorithm=signature_name(cert), spki_sha256=spki_sha256(cert),
        self_signed=self_signed, chain_complete=None, hostname_match=None,
        fingerprint_sha256=fingerprint(cert), der=cert.public_bytes(serialization.Encoding.DER),
    )
    report.findings.extend(validity_findings(not_before, not_after, now, thresholds))
    report.findings.extend(key_findings(key_type, key_bits, thresholds))
    weak = WEAK_SIGNATURES.get(cert.signature_algorithm_oid)
    if weak and not (self_signed and is_ca(cert)):
        report.findings.append(Finding("cert.weak_signature", "high",
                                       f"signed with {weak} ({report.signature_algorithm})"))
    if self_signed and (served_as_leaf or not is_ca(cert)):
        report.findings.append(Finding("cert.self_signed", "medium",
                                       "the certificate is signed by its own key"))
    return report


def validity_findings(not_before: datetime, not_after: datetime, now: datetime,
                      thresholds: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    days_left = (not_after - now).total_seconds() / 86400
    if now >= not_after:
        findings.append(Finding("cert.expired", "critical",
                                f"expired {-days_left:.1f} days ago ({_iso(not_after)})"))
        return findings
    if now < not_before:
        findings.append(Finding("cert.not_yet_valid", "high",
                                f"not valid before {_iso(not_before)}"))
    for severity, limit in thresholds.expiring:
        if days_left <= limit:
            findings.append(Finding("cert.expiring", severity,
                                    f"expires in {days_left:.1f} days ({_iso(not_after)}), "
                                    f"at or under the {severity} threshold of {limit:g} days"))
            break
    lifetime = (not_after - not_before).total_seconds()
    if lifetime > 0 and now >= not_before:
        used = (now - not_before).total_seconds() / lifetime
        if used >= thresholds.renewal_fraction:
            findings.append(Finding("cert.renewal_due", "low",
                                    f"{used:.0%} of its lifetime has passed (renewal due at "
                                    f"{thresholds.renewal_fraction:.0%})"))
    return findings


def renewal_time(not_before: datetime, not_after: datetime, fraction: float) -> datetime:
    return not_before + (not_after - not_before) * fraction


def key_findings(key_type: str, key_bits: int | None, thresholds: Thresholds) -> list[Finding]:
    if key_bits is None:
        return []
    if key_type in ("RSA", "DSA") and key_bits < thresholds.min_rsa_bits:
        return [Finding("cert.weak_key", "high",
                        f"{key_type} key of {key_bits} bits (under {thresholds.min_rsa_bits})")]
    if key_type == "EC" and key_bits < thresholds.min_ec_bits:
        return [Finding("cert.weak_key", "high",
                        f"EC key of {key_bits} bits (under {thresholds.min_ec_bits})")]
    return []


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """RFC 6125 matching against the subjectAltName (no common-name fallback).

    A wildcard is honoured only as the whole leftmost label and matches exactly one
    label; an IP address matches only an IP SAN.
    """
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    host = name.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return any(ip == address for ip in ext.get_values_for_type(x509.IPAddress))
    labels = host.split(".")
    for pattern in ext.get_values_for_type(x509.DNSName):
        plabels = pattern.rstrip(".").lower().split(".")
        if len(plabels) != len(labels):
            continue
        if plabels[0] == "*" and len(plabels) > 2:
            if plabels[1:] == labels[1:] and labels[0]:
                return True
        elif plabels == labels:
            return True
    return False
