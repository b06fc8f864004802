"""An internal certificate authority for mTLS: a root, an intermediate, short-lived leaves.

:func:`create_authority` makes a root (10 years) and an intermediate (5 years) with
EC P-384 and P-256 keys; the root key is meant to be kept offline, the intermediate key
is what the platform reads (through the secret reader) to issue. :func:`issue` signs a
public key (from a CSR, whose signature :func:`read_csr` checks) as a ``server``
(serverAuth, DNS/IP names) or ``client`` (clientAuth) certificate, by default for 24
hours; such certificates are renewed once two thirds of their lifetime have passed
(:func:`renewal_due`). :func:`build_crl` signs the revocation list.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from secops.certs.analysis import renewal_time
from secops.certs.model import CertsError

PROFILES = ("server", "client")
DEFAULT_LIFETIME = timedelta(hours=24)
MAX_LIFETIME = timedelta(days=90)
BACKDATE = timedelta(minutes=5)  # tolerate clock skew between issuer and relying parties
IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class Authority:
    root: x509.Certificate
    root_key: IssuerKey
    intermediate: x509.Certificate
    intermediate_key: IssuerKey

    def chain_pem(self) -> bytes:
        return pem(self.intermediate) + pem(self.root)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_chain(chain: list[x509.Certificate]) -> str:
    return b"".join(pem(c) for c in chain).decode()


def key_pem(key: IssuerKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                         crl_sign=True, encipher_only=False, decipher_only=False)


def create_authority(name: str, *, now: datetime, root_days: int = 3650,
                     intermediate_days: int = 1825) -> Authority:
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    start = now - BACKDATE
    root = (x509.CertificateBuilder().subject_name(_name(f"{name} Root CA"))
            .issuer_name(_name(f"{name} Root CA")).public_key(root_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + timedelta(days=root_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA384()))
    intermediate = (
        x509.CertificateBuilder().subject_name(_name(f"{name} Intermediate CA"))
        .issuer_name(root.subject).public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(now + timedelta(days=min(intermediate_days, root_days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                       critical=False)
        .sign(root_key, hashes.SHA384()))
    return Authority(root, root_key, intermediate, inter_key)


def load_chain(chain_pem: bytes) -> list[x509.Certificate]:
    """The intermediate (first in ``chain_pem``), then its issuers."""
    try:
        return x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise CertsError("the CA chain file holds no PEM certificate") from None


def load_issuer(chain_pem: bytes, key_pem_text: str) -> tuple[list[x509.Certificate], IssuerKey]:
    """The intermediate (first in ``chain_pem``, then its issuers) and its private key."""
    chain = load_chain(chain_pem)
    try:
        key = serialization.load_pem_private_key(key_pem_text.encode(), password=None)
    except (ValueError, TypeError):
        raise CertsError("the CA key is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertsError("the CA key must be an EC or RSA key")
    if key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo) != \
            chain[0].public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo):
        raise CertsError("the CA key does not belong to the first certificate of the CA chain")
    return chain, key


def read_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise CertsError("not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise CertsError("the CSR's signature does not verify")
    return csr


def csr_common_name(csr: x509.CertificateSigningRequest) -> str | None:
    values = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def _general_names(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for value in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(value)))
        except ValueError:
            out.append(x509.DNSName(value))
    return out


def issue(issuer: x509.Certificate, issuer_key: IssuerKey, public_key: object, *, common_name: str,
          sans: list[str], profile: str, now: datetime, lifetime: timedelta = DEFAULT_LIFETIME,
          crl_url: str | None = None) -> x509.Certificate:
    if profile not in PROFILES:
        raise CertsError(f"profile must be one of {', '.join(PROFILES)}")
    if not timedelta(minutes=5) <= lifetime <= MAX_LIFETIME:
        raise CertsError("lifetime must be between 5 minutes and 90 days")
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise CertsError("the key must be EC, RSA or Ed25519")
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
        raise CertsError("RSA keys must have at least 2048 bits")
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.key_size < 256:
        raise CertsError("EC keys must be on a curve of at least 256 bits")
    if profile == "server" and not sans:
        raise CertsError("a server certificate needs at least one DNS name or IP address")
    not_after = min(now + lifetime, issuer.not_valid_after_utc)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if profile == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(issuer.subject)
               .public_key(public_key)  # type: ignore[arg-type]
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                                            data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def renewal_due(cert: x509.Certificate, now: datetime, fraction: float = 2 / 3) -> bool:
    return now >= renewal_time(cert.not_valid_before_utc, cert.not_valid_after_utc, fraction)


def build_crl(issuer: x509.Certificate, issuer_key: IssuerKey, revoked: list[tuple[int, datetime]],
              *, now: datetime, next_update: timedelta = timedelta(hours=24)
              ) -> x509.CertificateRevocationList:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(now - BACKDATE).next_update(now + next_update)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False)
               .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False))
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(issuer_key, hashes.SHA256())
