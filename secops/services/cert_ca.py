"""The internal CA on the platform: issuing from CSRs, revoking, the revocation list.

The intermediate's certificate chain comes from ``SECOPS_CERTS_CA_CHAIN_FILE`` and its
key through the secret reader (``certs_ca_key``: ``/run/secrets/certs_ca_key``,
``SECOPS_CERTS_CA_KEY_FILE`` or ``SECOPS_CERTS_CA_KEY``). Every issuance and revocation
is recorded (``cert_issued``) and raises a security event; the routes audit them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.certs import analysis, ca
from secops.certs.analysis import spki_sha256
from secops.certs.model import CertsError
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import CertIssued
from secops.errors import ConfigurationError, Conflict, InvalidInput, NotFound, Unavailable
from secops.services import monitor


@dataclass
class Issuer:
    chain: list[x509.Certificate]
    key: ca.IssuerKey

    @property
    def chain_pem(self) -> str:
        return ca.pem_chain(self.chain)


def _chain_file(settings: Settings) -> bytes:
    if settings.certs_ca_chain_file is None:
        raise Unavailable("the internal CA is not configured: set SECOPS_CERTS_CA_CHAIN_FILE "
                                 "(see 'secops certs ca init')")
    try:
        return settings.certs_ca_chain_file.read_bytes()
    except OSError as exc:
        raise Unavailable(f"SECOPS_CERTS_CA_CHAIN_FILE cannot be read ({exc.strerror})") from None


def chain_pem(settings: Settings) -> str:
    """The CA chain for relying parties: read from its file alone, the key is not loaded."""
    try:
        chain = ca.load_chain(_chain_file(settings))
    except CertsError as exc:
        raise Unavailable(f"the internal CA is misconfigured: {exc}") from None
    return ca.pem_chain(chain)


def load_issuer(settings: Settings) -> Issuer:
    chain_pem = _chain_file(settings)
    try:
        key = settings.secret("certs_ca_key").get_secret_value()
    except ConfigurationError as exc:
        raise Unavailable(f"the internal CA is not configured: {exc.message}") from None
    try:
        chain, private = ca.load_issuer(chain_pem, key)
    except CertsError as exc:
        raise Unavailable(f"the internal CA is misconfigured: {exc}") from None
    return Issuer(chain, private)


@dataclass
class Issued:
    record: CertIssued
    certificate_pem: str
    chain_pem: str


def issue_from_csr(*, session: Session, settings: Settings, csr_pem: str, profile: str,
                   lifetime: timedelta, sans: list[str] | None, common_name: str | None,
                   requested_by: str) -> Issued:
    """Sign a CSR; the names come from the request body, else from the CSR."""
    try:
        csr = ca.read_csr(csr_pem.encode())
    except CertsError as exc:
        raise InvalidInput(str(exc)) from None
    issuer = load_issuer(settings)
    try:
        names = sans if sans is not None else _csr_sans(csr)
        cn = common_name or ca.csr_common_name(csr) or (names[0] if names else None)
        if not cn:
            raise CertsError("give a common name (in the request or the CSR)")
        cert = ca.issue(issuer.chain[0], issuer.key, csr.public_key(), common_name=cn[:64], sans=names,
                        profile=profile, now=utcnow(), lifetime=lifetime, crl_url=settings.certs_ca_crl_url)
    except CertsError as exc:
        raise InvalidInput(str(exc)) from None
    record = record_issued(session=session, cert=cert, profile=profile, requested_by=requested_by)
    return Issued(record, ca.pem(cert).decode(), issuer.chain_pem)


def record_issued(*, session: Session, cert: x509.Certificate, profile: str,
                  requested_by: str) -> CertIssued:
    """Record a certificate the CA signed, with its ``cert.issued`` security event."""
    der = cert.public_bytes(serialization.Encoding.DER)
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    sans = analysis.sans(cert)
    record = CertIssued(serial=format(cert.serial_number, "x"),
                        common_name=str(names[0].value)[:255] if names else "", profile=profile,
                        sans=sans,
                        fingerprint=hashlib.sha256(der).hexdigest(),
                        spki_sha256=spki_sha256(cert), not_before=cert.not_valid_before_utc,
                        not_after=cert.not_valid_after_utc, requested_by=requested_by[:80],
                        created_at=utcnow())
    session.add(record)
    session.flush()
    monitor.log_security_event("cert.issued", {"subject": record.serial, "common_name": record.common_name,
                                               "profile": profile, "requested_by": requested_by,
                                               "not_after": record.not_after.isoformat()},
                               "low", session=session)
    return record


def _csr_sans(csr: x509.CertificateSigningRequest) -> list[str]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(x509.DNSName)] + [
        str(v) for v in ext.get_values_for_type(x509.IPAddress)]


def get_issued(*, session: Session, serial: str) -> CertIssued:
    record = session.get(CertIssued, serial.lower().lstrip("0") or "0")
    if record is None:
        raise NotFound("issued certificate not found")
    return record


def list_issued(*, session: Session, limit: int = 100, offset: int = 0) -> list[CertIssued]:
    return list(session.scalars(select(CertIssued).order_by(CertIssued.created_at.desc())
                                .limit(limit).offset(offset)).all())


def revoke(*, session: Session, serial: str, reason: str, actor: str) -> CertIssued:
    record = get_issued(session=session, serial=serial)
    if record.revoked_at is not None:
        raise Conflict("the certificate is already revoked")
    record.revoked_at, record.revocation_reason = utcnow(), reason[:200]
    session.flush()
    monitor.log_security_event("cert.revoked", {"subject": record.serial, "common_name": record.common_name,
                                                "reason": reason[:200], "actor": actor}, "medium",
                               session=session)
    return record


def crl_der(*, session: Session, settings: Settings) -> bytes:
    """The revocation list, signed now, valid for a day (expired certificates drop off)."""
    issuer = load_issuer(settings)
    now = utcnow()
    rows = session.execute(select(CertIssued.serial, CertIssued.revoked_at).where(
        CertIssued.revoked_at.is_not(None), CertIssued.not_after > now)).all()
    revoked = [(int(serial, 16), when) for serial, when in rows if when is not None]
    crl = ca.build_crl(issuer.chain[0], issuer.key, revoked, now=now)
    return crl.public_bytes(serialization.Encoding.DER)
