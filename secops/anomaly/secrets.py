"""Credentials in log lines, found by the DLP engine's SECRETS pack.

Lines are scanned in batches (one DLP pass over many lines joined by newlines, offsets
mapped back to lines), which costs far less than a pass per line. :meth:`redact`
removes credentials from evidence lines before they leave the engine.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from secops.dlp import Classifier, Finding, Policy, redact

PACK = "SECRETS"


class SecretFinder:
    def __init__(self, types: Sequence[str] = ()) -> None:
        packs = tuple(p for p in Policy.default().packs if p.name == PACK)
        self.classifier = Classifier(Policy(packs))
        self.types = frozenset(types)

    def _wanted(self, finding: Finding) -> bool:
        return not self.types or finding.type in self.types

    def scan(self, lines: Sequence[str]) -> dict[int, list[Finding]]:
        """Index of each line holding a credential -> its findings (offsets in the line)."""
        starts: list[int] = []
        pos = 0
        for line in lines:
            starts.append(pos)
            pos += len(line) + 1
        found: dict[int, list[Finding]] = {}
        for f in self.classifier.iter_text("\n".join(lines)):
            if not self._wanted(f):
                continue
            i = bisect_right(starts, f.start) - 1
            found.setdefault(i, []).append(f)
        return found

    def redact(self, line: str) -> str:
        findings = list(self.classifier.iter_text(line))
        return redact(line, findings, "type") if findings else line
