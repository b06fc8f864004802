"""Archives inside documents, through the scanning engine's safe walker.

:class:`SafeArchiveWalker` is the ``archive_walker`` hook of :class:`~secops.dlp.Classifier`
(``(data, name) -> (member, bytes)...``). It expands zip, tar (plain, gz, bz2, xz),
gzip/bzip2/xz streams, 7z, ar and cpio with :class:`secops.scanning.archives.Expander`: members
are held in memory only, never written, and one budget per top-level archive bounds
the bytes produced and the entries read across every nesting level, so a bomb stops
at the limit. Nested archives are expanded here (depth-limited) and yielded as their
leaf members, named ``inner.zip!dir/data.csv``; OOXML files are documents, not
archives, and come out whole for the DLP extractor.

What could not be read is reported by raising :class:`~secops.dlp.errors.ArchiveError`
*after* the readable members were yielded: the extractor records the problems as
errors and, for limits and bombs, marks the result ``truncated``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from secops.dlp.errors import ArchiveError
from secops.dlp.extract import Limits
from secops.scanning.archives import Budget, Expander
from secops.scanning.containers import archive_kind
from secops.scanning.models import Finding, ScanConfig, Severity

_DOCUMENTS = (".docx", ".xlsx", ".pptx")
_TRUNCATING = ("archive.limit.", "archive.bomb")
_UNREAD = ("archive.corrupt", "archive.encrypted", "archive.unsupported",
           "archive.size_mismatch", "archive.zip.malformed")


@dataclass(frozen=True, slots=True)
class SafeArchiveWalker:
    """Limits of one expansion (per top-level archive, all nesting levels together)."""

    max_depth: int = 3
    max_total_bytes: int = 64 << 20
    max_entries: int = 2000
    max_ratio: float = 200.0
    ratio_min_bytes: int = 1 << 20

    @classmethod
    def from_limits(cls, limits: Limits) -> SafeArchiveWalker:
        """A walker bounded like the DLP extraction: input size, parts, ratio, depth."""
        return cls(max_depth=limits.max_depth, max_total_bytes=limits.max_bytes,
                   max_entries=limits.max_parts, max_ratio=float(limits.max_ratio))

    def __call__(self, data: bytes, name: str) -> Iterator[tuple[str, bytes]]:
        config = ScanConfig(max_depth=self.max_depth, max_total_bytes=self.max_total_bytes,
                            max_entries=self.max_entries, max_ratio=self.max_ratio,
                            ratio_min_bytes=self.ratio_min_bytes)
        findings: list[Finding] = []
        expander = Expander(config, Budget(self.max_total_bytes, self.max_entries), findings)
        kind = archive_kind(data)
        if kind is not None:
            yield from self._walk(expander, kind, data, name, "", 1, findings)
        problems: list[str] = []
        truncated = False
        for f in findings:
            if f.id.startswith(_TRUNCATING):
                truncated = True
            elif not f.id.startswith(_UNREAD):
                continue  # path-safety notes: nothing is written, content was read
            where = f.location.split("!", 1)[1] if f.location and "!" in f.location else ""
            problems.append(f"{f.description} ({where})" if where else f.description)
        if kind is None:
            problems.append("not a supported archive")
        if problems:
            raise ArchiveError(problems, truncated=truncated)

    def _walk(self, expander: Expander, kind: str, data: bytes, location: str, prefix: str,
              depth: int, findings: list[Finding]) -> Iterator[tuple[str, bytes]]:
        for member, content in expander.members(kind, data, location):
            name = prefix + member
            inner = None if member.lower().endswith(_DOCUMENTS) else archive_kind(content)
            if inner is None:
                yield name, content  # a RAR, cab...: the extractor reports it as not read
            elif depth >= self.max_depth:
                findings.append(Finding("archive.limit.depth", Severity.MEDIUM,
                                        f"archives nested deeper than {self.max_depth}",
                                        f"{location}!{member}"))
            else:
                yield from self._walk(expander, inner, content, f"{location}!{member}",
                                      name + "!", depth + 1, findings)
            if expander.budget.exhausted:
                return
