"""The TLS client that collects what an endpoint serves.

:class:`TlsProber` connects to an :class:`Endpoint` (TCP connect and handshake, each
bounded by a timeout) and returns the certificate chain exactly as the server sent it,
whether OpenSSL verified that chain against the trust store (the system store, or a
CA file given instead), and whether the endpoint still accepts TLS 1.0 or 1.1.

Trust is judged by OpenSSL itself, with two deliberate relaxations so that each
problem is reported under its own finding rather than as "untrusted": validity dates
are not checked during verification (``cert.expired`` says that) and the security
level is 0 (``cert.weak_key`` and ``cert.weak_signature`` say that). An endpoint whose
chain does not verify is contacted a second time without verification to read the
chain. The weak-protocol probe is a separate handshake limited to TLS 1.0-1.1; it needs
an OpenSSL that can still offer those versions at security level 0, which
:func:`weak_protocols_supported` checks once in memory.
"""

from __future__ import annotations

import functools
import socket
import ssl
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography import x509

from secops.certs.model import CertsError

NO_CHECK_TIME = 0x200000  # X509_V_FLAG_NO_CHECK_TIME
PERMISSIVE_CIPHERS = "DEFAULT:@SECLEVEL=0"
DEFAULT_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                      "/etc/ssl/cert.pem")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    sni: str | None = None
    target: str = ""

    @property
    def name(self) -> str:
        """The name the certificate must match: the SNI name, else the host."""
        return self.sni or self.host

    @property
    def label(self) -> str:
        return self.target or f"{self.host}:{self.port}"


class EndpointError(Exception):
    """The endpoint gave no TLS handshake; the message says why, for a person."""


@dataclass
class Handshake:
    chain: list[bytes]
    verified: bool
    verify_error: str | None
    protocol: str
    weak_protocol: str | None


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _chain_der(sock: ssl.SSLSocket) -> list[bytes]:
    public = getattr(sock, "get_unverified_chain", None)
    if public is not None:  # Python 3.13+
        return [bytes(c) for c in public()]
    sslobj = getattr(sock, "_sslobj", None)
    getter = getattr(sslobj, "get_unverified_chain", None)
    if getter is not None:
        return [c.public_bytes(2) for c in getter() or []]  # 2 == _ssl.ENCODING_DER
    leaf = sock.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def load_anchors(ca_file: str | None) -> list[x509.Certificate]:
    """The certificates of the trust store as objects (for the chain-completeness walk)."""
    paths = [ca_file] if ca_file else [p for p in DEFAULT_CA_BUNDLES if Path(p).is_file()][:1]
    anchors: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CertsError(f"CA file {path}: {exc.strerror}") from None
        try:
            with warnings.catch_warnings():  # system bundles hold a few pre-RFC 5280 roots
                warnings.simplefilter("ignore")
                anchors.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            try:
                anchors.append(x509.load_der_x509_certificate(data))
            except ValueError:
                raise CertsError(f"CA file {path}: no PEM or DER certificate in it") from None
    return anchors


def describe_error(exc: BaseException, *, stage: str, timeout: float) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name: {exc.strerror}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out after {timeout:g} s during the {stage}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionResetError):
        return "the peer closed the connection during the TLS handshake"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if reason in {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "LENGTH_TOO_SHORT"}:
            return "the peer does not speak TLS (a plaintext listener?)"
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return f"{stage} failed: {exc.strerror or type(exc).__name__}"
    return f"{stage} failed: {type(exc).__name__}"


class TlsProber:
    """Handshakes with endpoints; safe to share between threads."""

    def __init__(self, *, ca_file: str | None = None, timeout: float = 5.0,
                 probe_weak: bool = True) -> None:
        self.timeout = timeout
        self.ca_file = ca_file
        self.verify_ctx = self._context(verify=True)
        self.inspect_ctx = self._context(verify=False)
        self.probe_weak = probe_weak and weak_protocols_supported()
        self.weak_ctx = self._context(verify=False, weak_only=True) if self.probe_weak else None

    def _context(self, *, verify: bool, weak_only: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.set_ciphers(PERMISSIVE_CIPHERS)
        with warnings.catch_warnings():  # the old versions are what is being probed
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            if weak_only:
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        if verify:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.verify_flags |= NO_CHECK_TIME
            if self.ca_file:
                try:
                    ctx.load_verify_locations(cafile=self.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise CertsError(f"CA file {self.ca_file}: cannot be loaded "
                                     f"({getattr(exc, 'strerror', None) or exc})") from None
            else:
                ctx.load_default_certs()
        else:
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _connect(self, endpoint: Endpoint, ctx: ssl.SSLContext) -> ssl.SSLSocket:
        stage = "connect"
        try:
            raw = socket.create_connection((endpoint.host, endpoint.port), timeout=self.timeout)
        except Exception as exc:
            raise EndpointError(describe_error(exc, stage=stage, timeout=self.timeout)) from None
        stage = "TLS handshake"
        server_name = endpoint.sni or (None if _is_ip(endpoint.host) else endpoint.host)
        try:
            raw.settimeout(self.timeout)
            return ctx.wrap_socket(raw, server_hostname=server_name)
        except ssl.SSLCertVerificationError:
            raw.close()
            raise
        except Exception as exc:
            raw.close()
            raise EndpointError(describe_error(exc, stage=stage, timeout=self.timeout)) from None
        except BaseException:
            raw.close()
            raise

    def handshake(self, endpoint: Endpoint) -> Handshake:
        verified, verify_error = True, None
        try:
            sock = self._connect(endpoint, self.verify_ctx)
        except ssl.SSLCertVerificationError as exc:
            verified, verify_error = False, str(exc.verify_message or exc.reason or "verify failed")
            sock = self._connect(endpoint, self.inspect_ctx)
        try:
            chain = _chain_der(sock)
            protocol = sock.version() or ""
        finally:
            sock.close()
        if not chain:
            raise EndpointError("the server sent no certificate")
        weak = protocol if protocol in ("TLSv1", "TLSv1.1") else self._probe_weak(endpoint)
        return Handshake(chain, verified, verify_error, protocol, weak)

    def _probe_weak(self, endpoint: Endpoint) -> str | None:
        if self.weak_ctx is None:
            return None
        try:
            sock = self._connect(endpoint, self.weak_ctx)
        except (EndpointError, ssl.SSLError):
            return None
        try:
            return sock.version()
        finally:
            sock.close()


@functools.cache
def weak_protocols_supported() -> bool:
    """True when this OpenSSL completes a TLS 1.0 handshake with itself at SECLEVEL=0."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "probe")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(minutes=5))
            .sign(key, hashes.SHA256()))
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "probe.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        try:
            server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ctx.load_cert_chain(str(pem))
            client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
            for ctx in (server_ctx, client_ctx):
                ctx.set_ciphers(PERMISSIVE_CIPHERS)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
                    ctx.maximum_version = ssl.TLSVersion.TLSv1
        except (ssl.SSLError, ValueError):
            return False
    return _memory_handshake(server_ctx, client_ctx) == "TLSv1"


def _memory_handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> str | None:
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for key, obj in (("c", client), ("s", server)):
            if done[key]:
                continue
            try:
                obj.do_handshake()
                done[key] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return None
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if done["c"] and done["s"]:
            return client.version()
    return None


T = TypeVar("T")
R = TypeVar("R")


def bounded_map(func: Callable[[T], R], items: Iterable[T], *, workers: int) -> Iterator[R]:
    """``func`` over ``items`` on ``workers`` threads, results in input order, with at most
    ``2 * workers`` items in flight (memory stays bounded for any number of items)."""
    window: list[Future[R]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="certs") as pool:
        for item in items:
            window.append(pool.submit(func, item))
            if len(window) >= 2 * workers:
                yield window.pop(0).result()
        while window:
            yield window.pop(0).result()
