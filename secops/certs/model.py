"""Result objects of the certificate engine.

A :class:`CertReport` describes one certificate as seen at one target (an endpoint's
leaf, or one certificate of a file) with the findings judged against
:class:`Thresholds`; a target that yields no certificate at all (unreachable endpoint,
unreadable or malformed file) is a :class:`TargetError`. Both serialise to the JSON
lines of ``secops certs check --local --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


class CertsError(Exception):
    """A certificate engine input that can never succeed as given (bad target, bad pin)."""


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    description: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity, "description": self.description}


@dataclass(frozen=True)
class Thresholds:
    """When a certificate's remaining days or consumed lifetime become findings.

    ``expiring`` maps a severity to the number of days left at or under which
    ``cert.expiring`` has that severity (the most severe matching entry wins);
    ``renewal_fraction`` is the part of the lifetime after which ``cert.renewal_due``
    is raised; ``min_rsa_bits``/``min_ec_bits`` bound ``cert.weak_key``.
    """

    expiring: tuple[tuple[str, float], ...] = (("critical", 2), ("high", 7), ("medium", 14), ("low", 30))
    renewal_fraction: float = 2 / 3
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256

    @classmethod
    def from_days(cls, days: str, *, renewal_fraction: float = 2 / 3) -> Thresholds:
        """Parse ``"2,7,14,30"`` (critical, high, medium, low day limits)."""
        try:
            values = [float(part) for part in days.split(",")]
        except ValueError:
            raise CertsError(f"thresholds must be four numbers of days, got {days!r}") from None
        if len(values) != 4 or values != sorted(values) or values[0] < 0:
            raise CertsError("thresholds must be four increasing non-negative numbers of days "
                             "(critical,high,medium,low)")
        if not 0 < renewal_fraction < 1:
            raise CertsError("the renewal fraction must be between 0 and 1")
        return cls(expiring=tuple(zip(("critical", "high", "medium", "low"), values, strict=True)),
                   renewal_fraction=renewal_fraction)


@dataclass
class CertReport:
    target: str
    subject: str
    sans: list[str]
    issuer: str
    serial: str
    not_before: str
    not_after: str
    days_left: float
    key_type: str
    key_bits: int | None
    signature_algorithm: str
    spki_sha256: str
    self_signed: bool
    chain_complete: bool | None
    hostname_match: bool | None
    findings: list[Finding] = field(default_factory=list)
    # Not part of the JSON contract: what the platform stores next to it.
    fingerprint_sha256: str = ""
    chain_spki: list[str] = field(default_factory=list)
    der: bytes = b""

    @property
    def worst(self) -> str | None:
        return worst_severity(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "subject": self.subject, "sans": list(self.sans),
            "issuer": self.issuer, "serial": self.serial, "not_before": self.not_before,
            "not_after": self.not_after, "days_left": self.days_left, "key_type": self.key_type,
            "key_bits": self.key_bits, "signature_algorithm": self.signature_algorithm,
            "spki_sha256": self.spki_sha256, "self_signed": self.self_signed,
            "chain_complete": self.chain_complete, "hostname_match": self.hostname_match,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class TargetError:
    target: str
    error: str
    findings: list[Finding]

    @property
    def worst(self) -> str | None:
        return worst_severity(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "error": self.error,
                "findings": [f.to_dict() for f in self.findings]}


Result = CertReport | TargetError


def worst_severity(findings: list[Finding]) -> str | None:
    if not findings:
        return None
    return max((f.severity for f in findings), key=SEVERITY_RANK.__getitem__)


def at_least(severity: str | None, floor: str) -> bool:
    return severity is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[floor]
