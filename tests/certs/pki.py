"""Certificates for the tests, made with ``cryptography`` (independent of the engine)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def pin(self) -> str:
        spki = self.cert.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def issue(cn: str, *, issuer: Issued | None = None, key=None, sans=("localhost", "127.0.0.1"),
          not_before: datetime | None = None, not_after: datetime | None = None, ca: bool = False,
          digest=None, serial: int | None = None) -> Issued:
    key = key or ec_key()
    start = not_before or now() - timedelta(days=1)
    end = not_after or start + timedelta(days=90)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.cert.subject if issuer else name)
               .public_key(key.public_key()).serial_number(serial or x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    if sans:
        entries: list[x509.GeneralName] = []
        for value in sans:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(value)))
            except ValueError:
                entries.append(x509.DNSName(value))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, digest if digest is not None else hashes.SHA256())
    return Issued(cert, key)


@dataclass
class Pki:
    root: Issued
    intermediate: Issued

    @classmethod
    def create(cls, name: str = "Test") -> Pki:
        root = issue(f"{name} Root CA", ca=True, sans=(), not_after=now() + timedelta(days=3650))
        inter = issue(f"{name} Intermediate CA", issuer=root, ca=True, sans=(),
                      not_after=now() + timedelta(days=1800))
        return cls(root, inter)

    def leaf(self, cn: str = "localhost", **kwargs) -> Issued:
        return issue(cn, issuer=self.intermediate, **kwargs)

    def write_root(self, directory: Path) -> Path:
        path = directory / "root.pem"
        path.write_bytes(self.root.pem)
        return path


def openssl_signed(cn: str, issuer: Issued, digest: str, tmp: Path,
                   sans: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Issued:
    """A leaf signed with ``digest`` (sha1, md5) by the ``openssl`` command: ``cryptography``
    no longer signs with those hashes."""
    import subprocess

    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    key = rsa_key(2048)
    key_file, ca_file, ca_key, csr, out, ext = (tmp / n for n in
                                                 ("k.pem", "ca.pem", "cak.pem", "r.csr", "o.pem", "e.cnf"))
    key_file.write_bytes(Issued(issuer.cert, key).key_pem)
    ca_file.write_bytes(issuer.pem)
    ca_key.write_bytes(issuer.key_pem)
    alt = ",".join(("IP:" if s[0].isdigit() else "DNS:") + s for s in sans)
    ext.write_text(f"subjectAltName={alt}\nbasicConstraints=critical,CA:FALSE\n")
    subprocess.run(["openssl", "req", "-new", "-key", key_file, "-subj", f"/CN={cn}", "-out", csr],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key,
                    "-set_serial", "77", "-days", "60", f"-{digest}", "-extfile", ext, "-out", out],
                   check=True, capture_output=True)
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    return Issued(cert, load_pem_private_key(key_file.read_bytes(), None))
