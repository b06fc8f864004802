"""Result and configuration types of the scanning engine.

Everything here is a plain frozen-or-simple dataclass so that a service can store it,
serialise it with :meth:`FileResult.to_dict`, or send it through a broker without
importing anything from the engine's internals.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Severity(enum.IntEnum):
    """Ordered severities; the order drives the verdict (see :func:`verdict_for`)."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, default: Severity | None = None) -> Severity:
        """Read a severity from rule metadata; unknown values fall back to ``default``.

        Rules from configured directories may carry any metadata, so an unknown label
        must not crash a scan: it becomes ``default`` (medium unless told otherwise).
        """
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        return default if default is not None else cls.MEDIUM


class Verdict(enum.StrEnum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation about a file.

    ``location`` is ``None`` for the scanned file itself and otherwise names the path
    inside nested containers, ``outer.zip!inner/a.zip!eicar.com`` style, so a reader can
    find the offending member without unpacking anything.
    """

    id: str
    severity: Severity
    description: str
    location: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity.label,
            "description": self.description,
            "location": self.location,
        }


def verdict_for(findings: Iterable[Finding]) -> Verdict:
    """Critical findings make a file malicious; high or medium ones make it suspicious.

    Low and info findings (an identified ELF binary, a benign type note) are kept in the
    result for context but do not change a clean verdict: otherwise every executable
    uploaded on purpose would raise an event.
    """
    worst = max((f.severity for f in findings), default=Severity.INFO)
    if worst >= Severity.CRITICAL:
        return Verdict.MALICIOUS
    if worst >= Severity.MEDIUM:
        return Verdict.SUSPICIOUS
    return Verdict.CLEAN


@dataclass(slots=True)
class FileResult:
    """The outcome of scanning one top-level file (members of archives are findings)."""

    path: str
    sha256: str
    md5: str
    size: int
    mime: str
    description: str
    findings: list[Finding] = field(default_factory=list)
    ruleset_version: str = ""

    @property
    def verdict(self) -> Verdict:
        return verdict_for(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The exact ``secops scan --local --json`` line object (see docs/scanning.md)."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "mime": self.mime,
            "verdict": self.verdict.value,
            "findings": [f.to_dict() for f in self.findings],
        }


DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """Limits and inputs of a :class:`~secops.scanning.engine.Scanner`.

    The defaults are safe for untrusted uploads of up to about 100 MB: expanding a file
    never holds more than ``max_total_bytes`` of archive content in memory, and never
    writes any of it to disk.

    ``allowed_mime_types`` is ``None`` for "accept any type"; entries may end with
    ``/*`` (``"image/*"``). Blocklist files hold one hex digest per line (``#`` starts
    a comment); SHA-256 and MD5 digests are told apart by length.

    ``magic_bytes`` is how much of each object libmagic sees: every signature the type
    checks rely on sits in the first few KiB, while libmagic's text tests cost time in
    proportion to the buffer. ``member_text_magic_bytes`` is the same for an archive
    member named as a text document (.txt, .csv, .log, .md), which is checked only for
    script content; its MIME is not reported. ``json_magic_bytes`` is how much libmagic
    sees of a file that opens like JSON, so that its parser reaches the end of the
    document: JSON up to that size is application/json (and quicker to identify than
    text), larger JSON is text/plain; the parse costs about 5 ms per MiB.
    ``describe=False`` skips libmagic's human-readable description (a second libmagic
    pass) for callers that do not show it, such as ``secops scan --local``;
    ``FileResult.description`` is then "".
    ``md5=False`` likewise skips the MD5 digest (``FileResult.md5`` is "") unless MD5
    blocklists are configured, which always need it.
    ``reduced_magic=False`` identifies every object with libmagic's whole database, not
    the reduced copy for ASCII text (:mod:`secops.scanning.magicdb`; same answers).
    """

    max_depth: int = 5
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_entries: int = 10_000
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1024 * 1024
    match_timeout: int = 10
    allowed_mime_types: frozenset[str] | None = None
    rule_dirs: tuple[Path, ...] = ()
    include_bundled_rules: bool = True
    sha256_blocklists: tuple[Path, ...] = ()
    md5_blocklists: tuple[Path, ...] = ()
    magic_bytes: int = 4 * 1024
    json_magic_bytes: int = 1024 * 1024
    member_text_magic_bytes: int = 1024
    max_file_bytes: int = 1024 * 1024 * 1024
    describe: bool = True
    md5: bool = True
    reduced_magic: bool = True
