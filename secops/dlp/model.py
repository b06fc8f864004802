"""Plain result objects of the DLP engine.

A scanned document is a sequence of *parts* (the whole text of a text file, a page of
a PDF, the document body of a DOCX, a decoded e-mail attachment...). The parts are
joined with a newline into one *document text*; a text file has exactly one part, so
its document offsets are offsets into the file decoded as UTF-8. Every
:class:`Finding` carries both document offsets and the name of its part.

A finding never holds the matched value: only its type, offsets, score, a masked
preview and, when the caller passes a key, an HMAC-SHA256 of the normalised value
so that the same secret can be recognised across documents without being stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Category = Literal["PII", "PCI", "PHI", "SECRET"]
Level = Literal["public", "internal", "confidential", "restricted"]
Action = Literal["report", "redact", "mask", "block"]

CATEGORIES: tuple[Category, ...] = ("PII", "PCI", "PHI", "SECRET")
LEVELS: tuple[Level, ...] = ("public", "internal", "confidential", "restricted")
ACTIONS: tuple[Action, ...] = ("report", "redact", "mask", "block")


def level_rank(level: str) -> int:
    """Position of a classification level; higher is more sensitive."""
    return LEVELS.index(level)  # type: ignore[arg-type]


def classification_of(findings: Iterable[Finding]) -> Level:
    """A document's classification: the highest level among its findings ("public"
    without any)."""
    level: Level = LEVELS[0]
    for f in findings:
        if level_rank(f.level) > level_rank(level):
            level = f.level
    return level


class Finding(NamedTuple):
    """One validated detection. ``start``/``end`` index the document text.

    An immutable named tuple: a dense export yields tens of thousands of findings per
    megabyte, and a tuple is the cheapest record to build. It never holds the value.
    """

    type: str
    category: Category
    start: int
    end: int
    score: float
    part: str
    action: Action = "report"
    level: Level = "confidential"
    preview: str = ""
    digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The local-command contract: type, category, offsets and score only."""
        return {
            "type": self.type,
            "category": self.category,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
        }

    def to_record(self) -> dict[str, Any]:
        """Everything safe to store: no original value, only preview and digest."""
        return {
            **self.to_dict(),
            "part": self.part,
            "action": self.action,
            "level": self.level,
            "preview": self.preview,
            "digest": self.digest,
        }


@dataclass(frozen=True, slots=True)
class PartInfo:
    """Where a part of the file sits in the document text."""

    name: str
    start: int
    end: int


@dataclass(slots=True)
class DocumentResult:
    """Outcome of classifying one document."""

    classification: Level
    findings: list[Finding]
    parts: list[PartInfo] = field(default_factory=list)
    path: str | None = None
    blocked: bool = False
    truncated: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def categories(self) -> set[str]:
        return {f.category for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        """The local-command contract object (``path`` included when known)."""
        return {
            "path": self.path,
            "classification": self.classification,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_record(self) -> dict[str, Any]:
        """Summary safe to store as a job result; never contains matched values."""
        return {
            "path": self.path,
            "classification": self.classification,
            "blocked": self.blocked,
            "truncated": self.truncated,
            "errors": list(self.errors),
            "parts": [{"name": p.name, "start": p.start, "end": p.end} for p in self.parts],
            "findings": [f.to_record() for f in self.findings],
        }
