"""Checking targets: endpoints and certificate files, with pins.

:class:`Checker` turns targets (``host:port``, ``https://host[:port]/...``, a file or
a directory) into :class:`~secops.certs.model.CertReport` or
:class:`~secops.certs.model.TargetError` results. Endpoints are checked concurrently
(``workers`` threads, each connect and handshake bounded by ``timeout``), and a bad
endpoint or file is a result of its own: a run always goes on past it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from secops.certs.analysis import describe, hostname_matches, is_self_signed, issued_by, spki_sha256
from secops.certs.files import read_file, walk
from secops.certs.model import CertReport, CertsError, Finding, Result, TargetError, Thresholds
from secops.certs.tls import Endpoint, EndpointError, Handshake, TlsProber, bounded_map, load_anchors


@dataclass(frozen=True)
class FileTarget:
    path: str


Target = Endpoint | FileTarget


def parse_target(raw: str, *, sni: str | None = None) -> Target:
    """A target from its command-line form; :class:`CertsError` when it is none of them."""
    text = raw.strip()
    if text.lower().startswith(("https://", "http://")):
        parts = urlsplit(text)
        if parts.scheme.lower() != "https":
            raise CertsError(f"{raw!r}: only https:// URLs have certificates")
        try:
            port = parts.port or 443
        except ValueError:
            raise CertsError(f"{raw!r}: the port is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise CertsError(f"{raw!r}: the URL has no host")
        return Endpoint(parts.hostname, port, sni, raw)
    if Path(text).exists():
        return FileTarget(text)
    host, sep, port_text = text.rpartition(":")
    if sep and host and port_text.isdigit() and "/" not in text:
        port = int(port_text)
        if not 0 < port < 65536:
            raise CertsError(f"{raw!r}: the port is not a number from 1 to 65535")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise CertsError(f"{raw!r}: write an IPv6 address as [address]:port") from None
        return Endpoint(host, port, sni, raw)
    raise CertsError(f"{raw!r}: no such file or directory, and not host:port or an https:// URL")


def parse_pins(values: Iterable[str]) -> dict[str, set[str]]:
    """``TARGET=BASE64`` pairs (repeatable per target) as a target -> pins mapping."""
    pins: dict[str, set[str]] = {}
    for value in values:
        target, sep, pin = value.rpartition("=")
        # base64 itself may end in '=': split at the first '=' that leaves a valid pin
        for index, char in enumerate(value):
            if char == "=" and _valid_pin(value[index + 1:]):
                target, sep, pin = value[:index], "=", value[index + 1:]
                break
        if not sep or not target or not _valid_pin(pin):
            raise CertsError(f"pin {value!r}: expected TARGET=BASE64 with the base64 of a "
                             "SHA-256 digest (44 characters)")
        pins.setdefault(target, set()).add(pin)
    return pins


def _valid_pin(pin: str) -> bool:
    try:
        return len(base64.b64decode(pin, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


@dataclass
class Checker:
    thresholds: Thresholds = field(default_factory=Thresholds)
    ca_file: str | None = None
    timeout: float = 5.0
    workers: int = 32
    probe_weak: bool = True
    pins: Mapping[str, set[str]] = field(default_factory=dict)
    clock: object = None  # a callable returning an aware datetime, for tests; default now

    def __post_init__(self) -> None:
        self.prober = TlsProber(ca_file=self.ca_file, timeout=self.timeout, probe_weak=self.probe_weak)
        roots = [c for c in load_anchors(self.ca_file) if is_self_signed(c)]
        self.roots: dict[x509.Name, list[x509.Certificate]] = {}
        for root in roots:
            self.roots.setdefault(root.subject, []).append(root)

    def now(self) -> datetime:
        return self.clock() if callable(self.clock) else datetime.now(UTC)

    def check(self, targets: Iterable[Target]) -> Iterator[Result]:
        """Results for ``targets`` in order: endpoints concurrently, files as met."""
        def one(target: Target) -> list[Result]:
            if isinstance(target, FileTarget):
                return list(self.check_path(target.path))
            return [self.check_endpoint(target)]

        for results in bounded_map(one, targets, workers=self.workers):
            yield from results

    def check_path(self, path: str) -> Iterator[Result]:
        now = self.now()
        pins = self.pins.get(path)
        for file in walk(path):
            for item in read_file(file):
                if item.cert is None:
                    yield TargetError(item.path, item.error or "unreadable",
                                      [Finding(item.error_id or "cert.malformed",
                                               "high" if item.error_id == "cert.malformed" else "medium",
                                               item.error or "unreadable")])
                    continue
                report = describe(item.cert, target=item.path, now=now, thresholds=self.thresholds,
                                  served_as_leaf=False)
                report.chain_spki = [report.spki_sha256]
                if pins and report.spki_sha256 not in pins:
                    report.findings.append(pin_finding(report.spki_sha256))
                yield report

    def check_endpoint(self, endpoint: Endpoint) -> Result:
        try:
            handshake = self.prober.handshake(endpoint)
        except EndpointError as exc:
            return TargetError(endpoint.label, str(exc),
                               [Finding("tls.unreachable", "high", f"unreachable: {exc}")])
        return self.judge(endpoint, handshake)

    def judge(self, endpoint: Endpoint, handshake: Handshake) -> Result:
        try:
            chain = [x509.load_der_x509_certificate(der) for der in handshake.chain]
        except ValueError:
            return TargetError(endpoint.label, "the server sent a certificate that cannot be parsed",
                               [Finding("cert.malformed", "high",
                                        "the served certificate is not valid DER")])
        leaf = chain[0]
        report = describe(leaf, target=endpoint.label, now=self.now(), thresholds=self.thresholds,
                          served_as_leaf=True)
        report.chain_spki = [spki_sha256(c) for c in chain]
        report.hostname_match = hostname_matches(leaf, endpoint.name)
        report.chain_complete = self.chain_complete(chain, signatures_checked=handshake.verified)
        if not report.hostname_match:
            report.findings.append(Finding("cert.hostname_mismatch", "high",
                                           f"the certificate is not valid for {endpoint.name} "
                                           f"(names: {', '.join(report.sans) or 'none'})"))
        if not report.chain_complete:
            report.findings.append(Finding("cert.chain_incomplete", "medium",
                                           "the server did not send the intermediate certificates "
                                           "needed to reach a root"))
        if not handshake.verified:
            store = f"CA file {self.ca_file}" if self.ca_file else "the system trust store"
            report.findings.append(Finding("cert.untrusted", "high",
                                           f"the chain does not verify against {store}: "
                                           f"{handshake.verify_error}"))
        pins = self.pins.get(endpoint.label) or self.pins.get(f"{endpoint.host}:{endpoint.port}")
        if pins and not pins.intersection(report.chain_spki):
            report.findings.append(pin_finding(report.spki_sha256))
        if handshake.weak_protocol:
            report.findings.append(Finding("tls.protocol_weak", "medium",
                                           f"the endpoint accepts {handshake.weak_protocol}"))
        return report

    def chain_complete(self, chain: list[x509.Certificate], *, signatures_checked: bool = False) -> bool:
        """True when the served certificates lead from the leaf to a self-signed certificate
        or to one issued by a root of the trust store.

        When OpenSSL has already verified the chain (``signatures_checked``), links are
        followed by name alone; otherwise each link's signature is checked too."""
        def link(child: x509.Certificate, parent: x509.Certificate) -> bool:
            if signatures_checked:
                return child.issuer == parent.subject
            return issued_by(child, parent)

        current, used = chain[0], {0}
        for _ in range(len(chain) + 1):
            if current.issuer == current.subject and link(current, current):
                return True
            if any(link(current, root) for root in self.roots.get(current.issuer, ())):
                return True
            step = next((i for i, c in enumerate(chain) if i not in used and link(current, c)), None)
            if step is None:
                return False
            used.add(step)
            current = chain[step]
        return False


def pin_finding(spki: str) -> Finding:
    return Finding("cert.pin_mismatch", "critical",
                   f"no certificate of the chain matches a pin (leaf pin-sha256 {spki})")


def exit_status(results: Iterable[CertReport | TargetError]) -> int:
    from secops.certs.model import at_least
    return 1 if any(at_least(r.worst, "medium") for r in results) else 0
