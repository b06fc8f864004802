"""What every archive reader shares: the expansion budget and the member bookkeeping.

:class:`Budget` is what expansion may still produce for one top-level file, across
every nesting level. :class:`ExpansionBase` holds the configuration, that budget and
the findings list, and the steps each reader takes per member: count it as an entry,
check its name (:func:`name_findings`; the name is never used as a path), record it in
the archive's links, charge its bytes, and stop with a limit finding once the budget
is spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from secops.scanning.links import ArchiveLinks
from secops.scanning.models import Finding, ScanConfig, Severity


@dataclass(slots=True)
class Budget:
    """What expansion may still produce for one top-level file."""

    bytes_left: int
    entries_left: int
    exhausted: bool = False


def name_findings(name: str, location: str) -> list[Finding]:
    """Path-safety findings for a member name; the name is never used as a path."""
    findings = []
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":" and normal[0].isalpha()):
        findings.append(Finding("archive.absolute_path", Severity.HIGH,
                                f"member has an absolute path: {name!r}", location))
    if ".." in normal.split("/"):
        findings.append(Finding("archive.path_traversal", Severity.HIGH,
                                f"member name escapes the extraction directory: {name!r}",
                                location))
    if any(ord(c) < 32 for c in name):
        findings.append(Finding("archive.control_characters", Severity.LOW,
                                f"member name contains control characters: {name!r}", location))
    return findings


class ExpansionBase:
    """The budget and findings of one expansion, and the per-member steps of every reader."""

    def __init__(self, config: ScanConfig, budget: Budget, findings: list[Finding]) -> None:
        self.config = config
        self.budget = budget
        self.findings = findings

    def _add(self, fid: str, severity: Severity, text: str, location: str) -> None:
        self.findings.append(Finding(fid, severity, text, location))

    def _enter(self, name: str, location: str, links: ArchiveLinks | None = None) -> str | None:
        """The member's location, once it is counted as an entry, its name is checked and
        recorded in ``links``; ``None`` when the budget is spent (expansion stops)."""
        member_loc = f"{location}!{name}"
        if self.budget.exhausted or not self._take_entry(member_loc):
            return None
        self.findings.extend(name_findings(name, member_loc))
        if links is not None:
            links.member(name, member_loc)
        return member_loc

    @contextmanager
    def _links(self) -> Iterator[ArchiveLinks]:
        """One archive's links, judged when its walk ends, however it ends."""
        links = ArchiveLinks()
        try:
            yield links
        finally:
            self.findings.extend(links.findings())

    def _take_entry(self, location: str) -> bool:
        if self.budget.entries_left <= 0:
            self._limit("archive.limit.entries",
                        f"more than {self.config.max_entries} archive entries", location)
            return False
        self.budget.entries_left -= 1
        return True

    def _limit(self, fid: str, text: str, location: str) -> None:
        if not self.budget.exhausted:
            self._add(fid, Severity.MEDIUM, f"expansion stopped: {text}", location)
        self.budget.exhausted = True

    def _charge(self, produced: int, location: str) -> bool:
        self.budget.bytes_left -= produced
        if self.budget.bytes_left < 0:
            self._limit("archive.limit.total_bytes",
                        f"more than {self.config.max_total_bytes} bytes expanded", location)
            return False
        return True
