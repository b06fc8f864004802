"""The classifier: runs a policy's detectors over text and resolves the findings.

Text is scanned in windows of ``CHUNK`` characters that overlap by ``OVERLAP`` (longer
than the longest match, a 16 kB PEM block) and look ``LEAD`` characters back for
boundaries and context words. A candidate belongs to the window its *start* falls in,
so windows never report a finding twice, and memory stays bounded by the window size
however long the input: :meth:`Classifier.iter_stream` reads a text stream of any
length in constant memory.

Within a window each detector is first gated by cheap literal tests (no ``@``, no
email detector), then its pattern runs, its validator decides, context words nearby
raise the score, and the policy's minimum score filters. Overlapping candidates are
resolved by detector priority, then score, so ``user:pass@host`` yields a password
and not an e-mail address.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from heapq import heappop, heappush
from pathlib import Path
from typing import TextIO

from secops.dlp import prefilter, unescape
from secops.dlp.detectors import ANCHOR_REACH, Detector, combine
from secops.dlp.errors import ExtractionError
from secops.dlp.extract import Limits, Part, extract, guess_encoding, sniff
from secops.dlp.model import LEVELS, DocumentResult, Finding, Level, PartInfo, level_rank
from secops.dlp.policy import Policy, Rule
from secops.dlp.redact import keyed_hash, mask
from secops.dlp.validators import score_bound

CHUNK = 1 << 20
OVERLAP = 1 << 15
LEAD = 256
CONTEXT_BEFORE = 80
CONTEXT_AFTER = 40

ArchiveWalker = Callable[[bytes, str], Iterable[tuple[str, bytes]]]
"""Hook for archives: (data, name) -> (member name, member bytes). See docs/dlp.md."""

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(text: str) -> str:
    """Lower-case without changing length (``str.lower`` may, e.g. for 'İ')."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


@dataclass(frozen=True, slots=True)
class _Active:
    detector: Detector
    rule: Rule
    context: re.Pattern[str] | None
    bound: Callable[[str], float] | None = None  # most the check can score a value


@dataclass(slots=True)
class _Candidate:
    start: int
    end: int
    score: float
    priority: int
    active: _Active
    value: str | None = None  # the decoded value when the window had escapes


def _context_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(r"(?<![a-z0-9])(?:" + alternatives + ")")


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    intervals.sort()
    merged: list[tuple[int, int]] = []
    for lo, hi in intervals:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


class Classifier:
    """Scan text or files with a :class:`Policy`; pure, thread-safe, reusable.

    ``hmac_key`` (bytes, from the caller's secret store) turns on keyed hashes of
    matched values; without it ``Finding.digest`` is ``None``.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        hmac_key: bytes | None = None,
        limits: Limits | None = None,
        archive_walker: ArchiveWalker | None = None,
        use_prefilter: bool = True,
        decode_escapes: bool = True,
    ) -> None:
        self.policy = policy or Policy.default()
        self.limits = limits or Limits()
        self.archive_walker = archive_walker
        self._hmac_key = hmac_key
        self.decode_escapes = decode_escapes
        self._active = [
            _Active(d, rule, _context_regex(d.context), score_bound(d.check))
            for d, rule in self.policy.detectors()
        ]
        groups: dict[str, list[str]] = {}
        for a in self._active:
            if a.detector.shared is not None:
                groups.setdefault(a.detector.shared, []).append(a.detector.pattern.pattern)
        self._shared = {name: combine(name, patterns) for name, patterns in groups.items()}
        self._anchored: dict[str, list[str]] = {}
        self._prefilter = self._compile_prefilter() if use_prefilter else None

    def __repr__(self) -> str:  # never show the key
        return f"Classifier(packs={[p.name for p in self.policy.packs]})"

    # -- public API -------------------------------------------------------------

    def scan_text(
        self, text: str, *, part: str = "text", path: str | None = None
    ) -> DocumentResult:
        """Classify a text (already decoded); offsets index ``text``."""
        findings = list(self.iter_text(text, part=part))
        return self._result(findings, [PartInfo(part, 0, len(text))], path=path)

    def scan_bytes(
        self, data: bytes, filename: str = "", *, path: str | None = None
    ) -> DocumentResult:
        """Extract the parts of a file's bytes and classify them."""
        extraction = extract(data, filename, self.limits, self.archive_walker)
        return self.scan_parts(extraction.parts, path=path, errors=extraction.errors,
                               truncated=extraction.truncated)

    def scan_parts(
        self,
        parts: Iterable[Part],
        *,
        path: str | None = None,
        errors: Iterable[str] = (),
        truncated: bool = False,
    ) -> DocumentResult:
        """Classify parts as one document text (parts joined by a newline)."""
        findings: list[Finding] = []
        infos: list[PartInfo] = []
        offset = 0
        for p in parts:
            infos.append(PartInfo(p.name, offset, offset + len(p.text)))
            findings.extend(self.iter_text(p.text, part=p.name, base=offset))
            offset += len(p.text) + 1
        return self._result(findings, infos, path=path, errors=list(errors), truncated=truncated)

    def scan_file(self, path: str | Path) -> DocumentResult:
        """Classify a file on disk; large text files are streamed, not loaded.

        Text is read with ``newline=""`` so offsets count ``\\r`` like the file does.
        """
        file = Path(path)
        with file.open("rb") as fh:
            head = fh.read(1 << 16)
        kind = sniff(head, file.name)
        if kind != "text":
            size = file.stat().st_size
            if size > self.limits.max_bytes:
                raise ExtractionError(f"document is larger than {self.limits.max_bytes} bytes")
            return self.scan_bytes(file.read_bytes(), file.name, path=str(path))
        encoding = guess_encoding(head)
        with file.open(encoding=encoding, errors="replace", newline="") as raw:
            stream = _Counting(raw)
            findings = list(self.iter_stream(stream))  # type: ignore[arg-type]
        return self._result(findings, [PartInfo("text", 0, stream.chars)], path=str(path))

    def iter_text(self, text: str, *, part: str = "text", base: int = 0) -> Iterator[Finding]:
        """Findings of ``text`` in order, offsets shifted by ``base``."""
        carried: list[tuple[int, int]] = []
        for keep_lo in range(0, max(len(text), 1), CHUNK):
            keep_hi = min(len(text), keep_lo + CHUNK)
            lo = max(0, keep_lo - LEAD)
            hi = min(len(text), keep_hi + OVERLAP)
            window = text[lo:hi] if (lo, hi) != (0, len(text)) else text
            found = self._scan_window(window, keep_lo - lo, keep_hi - lo, carried, lo)
            carried = [(f.start, f.end) for f in found if f.end > keep_hi]
            for f in found:
                yield self._finding(f, window, lo, base, part)

    def iter_stream(self, stream: TextIO, *, part: str = "text") -> Iterator[Finding]:
        """Findings of a text stream of any length, reading ``CHUNK`` characters at a time."""
        buf = ""
        buf_start = 0  # document offset of buf[0]
        keep_lo = 0
        carried: list[tuple[int, int]] = []
        eof = False
        while not eof or keep_lo < buf_start + len(buf):
            while not eof and buf_start + len(buf) < keep_lo + CHUNK + OVERLAP:
                data = stream.read(CHUNK)
                eof = not data
                buf += data
            keep_hi = min(buf_start + len(buf), keep_lo + CHUNK)
            lo = max(buf_start, keep_lo - LEAD)
            window = buf[lo - buf_start :]
            found = self._scan_window(window, keep_lo - lo, keep_hi - lo, carried, lo)
            carried = [(f.start, f.end) for f in found if f.end > keep_hi]
            for f in found:
                yield self._finding(f, window, lo, 0, part)
            keep_lo = keep_hi
            drop = max(0, keep_lo - LEAD - buf_start)
            buf, buf_start = buf[drop:], buf_start + drop
            if eof and keep_lo >= buf_start + len(buf):
                break

    # -- internals --------------------------------------------------------------

    def _result(
        self,
        findings: list[Finding],
        parts: list[PartInfo],
        *,
        path: str | None,
        errors: list[str] | None = None,
        truncated: bool = False,
    ) -> DocumentResult:
        level: Level = LEVELS[0]
        for f in findings:
            if level_rank(f.level) > level_rank(level):
                level = f.level
        return DocumentResult(
            classification=level,
            findings=findings,
            parts=parts,
            path=path,
            blocked=any(f.action == "block" for f in findings),
            truncated=truncated,
            errors=errors or [],
        )

    def _finding(self, c: _Candidate, window: str, lo: int, base: int, part: str) -> Finding:
        value = c.value if c.value is not None else window[c.start - lo : c.end - lo]
        d, rule = c.active.detector, c.active.rule
        return Finding(
            type=d.type,
            category=rule.category,
            start=base + c.start,
            end=base + c.end,
            score=round(c.score, 3),
            part=part,
            action=rule.action,
            level=rule.level,
            preview=mask(d.type, value, rule.category),
            digest=keyed_hash(self._hmac_key, d.type, value) if self._hmac_key else None,
        )

    def _compile_prefilter(self) -> prefilter.Prefilter | None:
        """Hyperscan anchors for shared groups whose detectors all have one, and near words."""
        anchors: dict[str, str] = {}
        members: dict[str, list[Detector]] = {}
        for a in self._active:
            if a.detector.shared is not None:
                members.setdefault(a.detector.shared, []).append(a.detector)
        for name, detectors in members.items():
            if all(d.anchor is not None for d in detectors):
                keys = [f"{name}#{i}" for i in range(len(detectors))]
                anchors.update((k, d.anchor) for k, d in zip(keys, detectors, strict=True)
                               if d.anchor is not None)
                self._anchored[name] = keys
        words = sorted({w for a in self._active for w in a.detector.near})
        if "" in words:
            return None
        literals = sorted({lit for a in self._active for lit in a.detector.literals})
        return prefilter.compiled(tuple(sorted(anchors.items())), tuple(words), tuple(literals))

    def _starts(
        self, window: str, keep_lo: int, keep_hi: int, hits: dict[str, list[int]] | None
    ) -> dict[str, list[int]]:
        """Window positions in [keep_lo, keep_hi) where each shared group's pattern matches."""
        starts: dict[str, list[int]] = {}
        for name, combined in self._shared.items():
            positions = starts[name] = []
            search = combined.search
            keys = self._anchored.get(name) if hits is not None else None
            if keys is None or hits is None:
                m = search(window, keep_lo)
                while m is not None and m.start() < keep_hi:
                    positions.append(m.start())
                    m = search(window, m.start() + 1)
                continue
            # Regions that end where an anchor ended; ``re`` decides inside them. A
            # shorter ``endpos`` only makes look-aheads more lenient (the detectors'
            # own patterns then re-check each start on the whole window).
            ends = sorted({e for k in keys for e in hits.get(k, ())})
            regions: list[tuple[int, int]] = []
            for end in ends:
                lo, hi = max(keep_lo, end - ANCHOR_REACH), min(keep_hi, end)
                if lo >= hi:
                    continue
                if regions and lo <= regions[-1][1]:
                    regions[-1] = (regions[-1][0], hi)
                else:
                    regions.append((lo, hi))
            size = len(window)
            for lo, hi in regions:
                endpos = min(size, hi + ANCHOR_REACH)
                m = search(window, lo, endpos)
                while m is not None and m.start() < hi:
                    positions.append(m.start())
                    m = search(window, m.start() + 1, endpos)
        return starts

    def _spans(
        self,
        d: Detector,
        window: str,
        low: str,
        starts: dict[str, list[int]],
        hits: dict[str, list[int]] | None,
    ) -> Iterator[tuple[int, int]]:
        if d.literals:
            if hits is not None:  # ASCII window: the prefilter looked for the literals
                if not any("lit:" + lit in hits for lit in d.literals):
                    return
            elif not any(lit in window for lit in d.literals):
                return
        if d.shared is not None:
            match = d.pattern.match
            for p in starts[d.shared]:
                m = match(window, p)
                if m is not None:
                    yield m.span()
        elif d.near:
            intervals = []
            for word in d.near:
                if hits is not None:  # ASCII window: the prefilter found the words
                    for end in hits.get("word:" + word, ()):
                        intervals.append((max(0, end - len(word) - d.near_window),
                                          end + d.near_window))
                    continue
                at = low.find(word)
                while at != -1:
                    intervals.append((max(0, at - d.near_window), at + len(word) + d.near_window))
                    at = low.find(word, at + 1)
            for lo, hi in _merge(intervals):
                for m in d.pattern.finditer(window, lo, min(hi, len(window))):
                    yield m.span(d.group)
        elif d.finder is not None:
            yield from d.finder(window, 0, len(window))
        else:
            for m in d.pattern.finditer(window):
                yield m.span(d.group)

    def _scan_window(
        self, window: str, keep_lo: int, keep_hi: int, carried: list[tuple[int, int]], lo: int
    ) -> list[_Candidate]:
        """Validated, policy-filtered, non-overlapping candidates starting in [keep_lo, keep_hi).

        Offsets of the returned candidates are document offsets (window offset + ``lo``).
        A window with JSON escapes or HTML character references is scanned decoded
        (:mod:`secops.dlp.unescape`); its findings keep the offsets of the original
        characters and carry the decoded value for the preview and digest.
        """
        decoded = unescape.decode(window) if self.decode_escapes else None
        if decoded is None:
            return self._select(window, keep_lo, keep_hi, lo, carried, None)
        text, offsets = decoded
        return self._select(text, offsets.decoded_offset(keep_lo),
                            offsets.decoded_offset(keep_hi), lo, carried, offsets)

    def _select(
        self,
        window: str,
        keep_lo: int,
        keep_hi: int,
        lo: int,
        carried: list[tuple[int, int]],
        offsets: unescape.OffsetMap | None,
    ) -> list[_Candidate]:
        """The findings of a window: candidates starting in [keep_lo, keep_hi) that their
        check accepts, scored, filtered by the policy's minimum score, and resolved.

        Overlapping candidates are resolved greedily in the order priority, score,
        length, position (the earlier detector first on a tie): each is kept unless it
        overlaps one kept before it or one ``carried`` over from the previous window.
        Checks run lazily in that order. A detector whose check has a known ceiling
        (:func:`secops.dlp.validators.score_bound`) enters the order at that ceiling;
        its check runs only when the candidate reaches the head of the order without
        overlapping a kept one, and it then re-enters at its real score. A candidate
        that meets a kept one first would have lost to it whatever its score, so the
        result is the same as checking everything first; in a dense export that skips
        most of the costly phone-number checks (a national number inside an
        international one, digits inside a card number or an SSN).
        """
        low = _lower(window)
        hits = None
        if self._prefilter is not None and window.isascii():
            hits = self._prefilter.scan(window)
        starts = self._starts(window, keep_lo, keep_hi, hits)
        size = len(low)
        order: list[tuple[int, float, int, int, int, int, _Active, int, int, str,
                          float | None]] = []
        seq = 0
        for active in self._active:
            d = active.detector
            min_score = active.rule.min_score
            neg = d.negative_before
            context = active.context
            bound = active.bound
            check = d.check
            for s, e in self._spans(d, window, low, starts, hits):
                if not keep_lo <= s < keep_hi or s == e:
                    continue
                value = window[s:e]
                if neg is not None and neg.search(low, max(0, s - 12), s):
                    continue
                boost: float | None = None
                if context is not None and (
                        context.search(low, max(0, s - CONTEXT_BEFORE), s)
                        or context.search(low, e, min(size, e + CONTEXT_AFTER))):
                    boost = d.context_boost
                if offsets is None:
                    start, end = s + lo, e + lo
                else:
                    start, end = lo + offsets.original_start(s), lo + offsets.original_end(e)
                seq += 1
                if bound is not None:
                    ceiling = bound(value)
                    if boost is not None:
                        ceiling = min(1.0, ceiling + boost)
                    if ceiling < min_score:
                        continue  # filtered out whatever the check says
                    heappush(order, (-d.priority, -ceiling, 0, start - end, start, seq,
                                     active, s, e, value, boost))
                    continue
                score = _score(check(value), boost)
                if score is None or score < min_score:
                    continue
                heappush(order, (-d.priority, -score, 1, start - end, start, seq,
                                 active, s, e, value, boost))
        spans = sorted(carried)
        kept: list[_Candidate] = []
        while order:
            entry = heappop(order)
            neg_priority, neg_score, checked, length, start, seq, active, s, e, value, boost = entry
            end = start - length
            i = bisect_left(spans, (start, end))
            if (i > 0 and spans[i - 1][1] > start) or (i < len(spans) and spans[i][0] < end):
                continue
            if not checked:
                score = _score(active.detector.check(value), boost)
                if score is not None and score >= active.rule.min_score:
                    heappush(order, (neg_priority, -score, 1, length, start, seq,
                                     active, s, e, value, boost))
                continue
            insort(spans, (start, end))
            kept.append(_Candidate(start, end, -neg_score, -neg_priority, active,
                                   value if offsets is not None else None))
        kept.sort(key=lambda c: c.start)
        return kept


class _Counting:
    """A text stream that remembers how many characters were read from it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.chars = 0

    def read(self, size: int = -1) -> str:
        data = self.stream.read(size)
        self.chars += len(data)
        return data


def _score(base: float | None, boost: float | None) -> float | None:
    """A check's base score, raised by the context boost when a context word is near."""
    if base is None or boost is None:
        return base
    return min(1.0, base + boost)
