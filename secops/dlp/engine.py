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
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from itertools import chain, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, TextIO

from secops.dlp import prefilter, unescape
from secops.dlp.detectors import _FIRST_FORM, NEGATIVE_ENDS, Detector, combine
from secops.dlp.errors import ExtractionError
from secops.dlp.extract import Limits, Part, extract, guess_encoding, sniff
from secops.dlp.model import DocumentResult, Finding, PartInfo, classification_of
from secops.dlp.policy import Policy, Rule
from secops.dlp.redact import keyed_hash, masker
from secops.dlp.validators import score_bound

CHUNK = 1 << 20
OVERLAP = 1 << 15
LEAD = 256
CONTEXT_BEFORE = 80
CONTEXT_AFTER = 40
CONTEXT_INDEX_AT = 1000
"""Candidates in a window from which the context words are found in one Hyperscan pass
(:class:`_Words`) rather than searched for around each candidate."""

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
    words: tuple[str, ...] = ()  # the context words, when they can be indexed (_Words)
    mask: Callable[[str], str] = str  # redact.masker of the type and category
    type: str = ""  # the detector's type and its rule's category, action and level,
    category: str = ""  # copied here for building findings
    action: str = ""
    level: str = ""


def _context_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(r"(?<![a-z0-9])(?:" + alternatives + ")")


_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


class _Words:
    """Where the words of one context occur in a lower-cased ASCII window, from the
    prefilter's hits (every end of every word, case-insensitive).

    ``within(a, b)`` is true exactly when ``_context_regex(words).search(low, a, b)``
    finds a match: a word that starts at or after ``a``, ends at or before ``b`` and
    does not follow ``[a-z0-9]`` (the look-behind sees before ``a``). A bisection per
    side replaces two regex searches per candidate.
    """

    __slots__ = ("ends", "starts")

    def __init__(self, low: str, words: tuple[str, ...], hits: dict[str, list[int]]) -> None:
        shortest: dict[int, int] = {}  # start -> end of the shortest word there
        for word in words:
            size = len(word)
            for end in hits.get("word:" + word, ()):
                at = end - size
                if at == 0 or low[at - 1] not in _WORD_CHARS:
                    if shortest.get(at, end + 1) > end:
                        shortest[at] = end
        self.starts = sorted(shortest)
        self.ends = [shortest[at] for at in self.starts]

    def within(self, lo: int, hi: int) -> bool:
        starts = self.starts
        i = bisect_left(starts, lo)
        while i < len(starts) and starts[i] < hi:
            if self.ends[i] <= hi:
                return True
            i += 1
        return False


def _indexable(word: str) -> bool:
    """A context word the prefilter looks for (lower-case ASCII, not empty)."""
    return bool(word) and word.isascii() and word == word.lower()


_LAST = sys.maxsize
_CLOSE = ((_LAST, _LAST),)
"""After a detector's anchor matches: starts after any region, closing the last one."""


class _Rounded(dict[float, float]):
    """``rounded[-score]`` is ``round(score, 3)``, a finding's score; the first 4096
    scores are kept (scores come from a few checks and boosts)."""

    def __missing__(self, neg_score: float) -> float:
        shown = round(-neg_score, 3)
        if len(self) < 4096:
            self[neg_score] = shown
        return shown


def _no_start(pattern: re.Pattern[str]) -> tuple[str, str]:
    """For a ``pattern`` in ``_first`` form (``cls(?<!before cls)...``): the ASCII
    characters after which it never starts a match (those of ``before``) and those it
    may start with (those of ``cls``); empty strings for another form."""
    parts = _FIRST_FORM.fullmatch(pattern.pattern)
    if parts is None or pattern.flags & re.IGNORECASE:
        return "", ""
    first, before = (re.compile(part) for part in parts.group(1, 2))
    ascii_chars = [chr(i) for i in range(128)]
    return ("".join(c for c in ascii_chars if before.fullmatch(c)),
            "".join(c for c in ascii_chars if first.fullmatch(c)))


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
            _Active(d, rule, _context_regex(d.context), score_bound(d.check),
                    d.context if all(_indexable(w) for w in d.context) else (),
                    masker(d.type, rule.category), d.type, rule.category, rule.action,
                    rule.level)
            for d, rule in self.policy.detectors()
        ]
        groups: dict[str, list[str]] = {}
        for a in self._active:
            if a.detector.shared is not None:
                groups.setdefault(a.detector.shared, []).append(a.detector.pattern.pattern)
        self._shared = {name: combine(name, patterns) for name, patterns in groups.items()}
        self._anchored: dict[str, list[str]] = {}  # group -> its detectors' anchor keys
        self._members: dict[str, list[Detector]] = {}
        self._anchor_of: dict[int, str] = {}  # id(detector) -> its anchor key
        self._no_start: dict[str, tuple[str, str]] = {}  # anchor key -> _no_start()
        self._prefilter = self._compile_prefilter() if use_prefilter else None
        context_words = tuple(sorted({w for a in self._active for w in a.words}))
        self._rounded = _Rounded()  # -score -> round(score, 3), for findings
        self._context_words = (prefilter.compiled((), context_words, (), True)
                               if self._prefilter is not None and context_words else None)

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
            carried = [(f[0], f[1]) for f in found if f[1] > keep_hi]
            yield from self._findings(found, window, lo, base, part)

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
            carried = [(f[0], f[1]) for f in found if f[1] > keep_hi]
            yield from self._findings(found, window, lo, 0, part)
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
        return DocumentResult(
            classification=classification_of(findings),
            findings=findings,
            parts=parts,
            path=path,
            blocked=any(f.action == "block" for f in findings),
            truncated=truncated,
            errors=errors or [],
        )

    def _findings(
        self, found: list[_Kept], window: str, lo: int, base: int, part: str
    ) -> Iterator[Finding]:
        """The findings of a window, lazily: a consumer that does not keep them (a
        count, a stream written out) never has them all alive at once."""
        key = self._hmac_key
        new = tuple.__new__  # Finding's own __new__ without its Python frame
        rounded = self._rounded
        if key:
            return (new(Finding, (  # type: ignore[type-var]
                a.type, a.category, base + start, base + end, rounded[neg_score], part,
                a.action, a.level, a.mask(value), keyed_hash(key, a.type, value)))
                for start, end, _, neg_score, _, _, a, value, _ in found)
        return (new(Finding, (  # type: ignore[type-var]
            a.type, a.category, base + start, base + end, rounded[neg_score], part,
            a.action, a.level, a.mask(value), None))
            for start, end, _, neg_score, _, _, a, value, _ in found)

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
                self._members[name] = detectors
                self._anchor_of.update((id(d), k) for d, k in zip(detectors, keys, strict=True))
                self._no_start.update((k, _no_start(d.pattern))
                                      for d, k in zip(detectors, keys, strict=True))
        words = sorted({w for a in self._active for w in a.detector.near})
        if "" in words:
            return None
        literals = sorted({lit for a in self._active
                           for lit in (*a.detector.literals, *a.detector.hints)})
        seeds = sorted({a.detector.seed for a in self._active if a.detector.seed is not None})
        return prefilter.compiled(tuple(sorted(anchors.items())), tuple(words), tuple(literals),
                                  seeds=tuple(seeds))

    def _starts(
        self, window: str, keep_lo: int, keep_hi: int, hits: dict[str, list[int]] | None
    ) -> dict[str, list[Any]]:
        """Window positions in [keep_lo, keep_hi) where a shared group's pattern matches.

        Keyed by the group's name; for a group whose detectors all have anchors and a
        window the prefilter scanned, by each detector's anchor key instead, with the
        spans of that detector's own matches: its pattern is searched only before its
        own anchor's ends (:meth:`_anchored_spans`).
        """
        starts: dict[str, list[Any]] = {}
        for name, combined in self._shared.items():
            keys = self._anchored.get(name) if hits is not None else None
            if keys is None or hits is None:
                positions = starts[name] = []
                search = combined.search
                m = search(window, keep_lo)
                while m is not None and m.start() < keep_hi:
                    positions.append(m.start())
                    m = search(window, m.start() + 1)
                continue
            for key, detector in zip(keys, self._members[name], strict=True):
                starts[key] = self._anchored_spans(
                    detector.pattern, window, keep_lo, keep_hi, hits.get("from:" + key, []),
                    hits.get(key, []), *self._no_start[key])
        return starts

    @staticmethod
    def _anchored_spans(
        pattern: re.Pattern[str], window: str, keep_lo: int, keep_hi: int,
        froms: list[int], ends: list[int], no_start: str = "", starters: str = "",
    ) -> list[tuple[int, int]]:
        """Where ``pattern`` matches inside the matches of its anchor: the span of its
        match on the whole window at each start found there.

        The anchor matches a superset of the pattern plus one boundary character on the
        left and up to two on the right, so a match of the pattern at ``p`` ending at
        ``e`` lies inside an anchor match ending at ``e``, ``e + 1`` or ``e + 2``, and
        the leftmost anchor match that ends there starts at or before ``p``. ``re``
        decides inside these regions; a shorter ``endpos`` only makes look-aheads more
        lenient, so each start is then matched again on the whole window, which gives
        the span.

        Conversely a match on the whole window inside a region is found by that search
        (it ends by the region's ``endpos``, and a shorter ``endpos`` only makes the
        right boundary's look-ahead more lenient), so the spans are exactly those of
        the whole-window matches starting in the regions. ``no_start`` holds the ASCII
        characters no match starts right after (the pattern's look-behind) and
        ``starters`` those a match starts with: in a region holding only ``no_start``
        characters after its first two (one value and its boundaries, most regions of
        a dense export), a match can start only at one of those two, and is matched
        there directly; after a match, a region holding only those characters has no
        further start and is not searched again.
        """
        spans: list[tuple[int, int]] = []
        search, match, add = pattern.search, pattern.match, spans.append
        lo = hi = endpos = -1  # the region being merged: [lo, hi), searched up to endpos
        # Hyperscan reports by end; the starts are then mostly in order already, and
        # the merge below only needs them in order (equal starts merge in any order).
        pairs = zip(froms, ends, strict=True)
        ordered = pairs if froms == sorted(froms) else sorted(pairs)
        for first, end in chain(ordered, _CLOSE):  # the last pair closes the last region
            if first < keep_lo:
                first = keep_lo
            clipped = end if end < keep_hi else keep_hi
            if first >= clipped and first != _LAST:
                continue
            if first <= hi:  # overlaps or touches the region: merge
                if clipped > hi:
                    hi = clipped
                if end > endpos:
                    endpos = end
                continue
            if hi < 0:  # the first region
                lo, hi, endpos = first, clipped, end
                continue
            # [lo, hi) is complete: its matches, then the next region
            if no_start and not window[lo + 1:hi - 1].strip(no_start):
                if window[lo] in starters and (lo == 0 or window[lo - 1] not in no_start):
                    whole = match(window, lo)
                    if whole is not None and whole.end() > lo:
                        add(whole.span())
                at = lo + 1
                if at < hi and window[at] in starters and window[lo] not in no_start:
                    whole = match(window, at)
                    if whole is not None and whole.end() > at:
                        add(whole.span())
            else:
                m = search(window, lo, endpos)
                while m is not None:
                    at = m.start()
                    if at >= hi:
                        break
                    whole = match(window, at)
                    if whole is not None and whole.end() > at:  # never empty, like _select's
                        add(whole.span())
                    if no_start and not window[at:hi - 1].strip(no_start):
                        break  # no position up to hi - 1 follows a character a match may
                    m = search(window, at + 1, endpos)
            lo, hi, endpos = first, clipped, end
        return spans

    def _spans(
        self,
        d: Detector,
        window: str,
        low: str,
        starts: dict[str, list[Any]],
        hits: dict[str, list[int]] | None,
    ) -> Iterable[tuple[int, int]]:
        if d.literals:
            if hits is not None:  # ASCII window: the prefilter looked for the literals
                if not any("lit:" + lit in hits for lit in d.literals):
                    return ()
            elif not any(lit in window for lit in d.literals):
                return ()
        if d.seed is not None and hits is not None and "seed:" + d.seed not in hits:
            return ()
        if d.shared is not None:
            key = self._anchor_of.get(id(d))
            spans = starts.get(key) if key is not None else None
            if spans is not None:  # matched inside its anchor's matches (_anchored_spans)
                return spans
            return self._shared_spans(d, window, starts[d.shared])
        if d.near:
            return self._near_spans(d, window, low, hits)
        if d.finder is not None:
            if d.hints and hits is not None:  # the prefilter looked for the hints
                absent = [h for h in d.hints if "lit:" + h not in hits]
                return d.finder(window, 0, len(window), absent=absent)  # type: ignore[no-any-return]
            return d.finder(window, 0, len(window))  # type: ignore[no-any-return]
        return [m.span(d.group) for m in d.pattern.finditer(window)]

    @staticmethod
    def _shared_spans(d: Detector, window: str, positions: list[int]) -> list[tuple[int, int]]:
        """Where a shared detector's own pattern matches at its group's start positions."""
        match = d.pattern.match
        return [m.span() for m in map(match, repeat(window), positions) if m is not None]

    @staticmethod
    def _near_spans(
        d: Detector, window: str, low: str, hits: dict[str, list[int]] | None
    ) -> Iterator[tuple[int, int]]:
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

    def _scan_window(
        self, window: str, keep_lo: int, keep_hi: int, carried: list[tuple[int, int]], lo: int
    ) -> list[_Kept]:
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
    ) -> list[_Kept]:
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
        cands: list[_Entry] = []
        append = cands.append
        indexed: dict[tuple[str, ...], _Words] = {}
        found = []
        total = 0
        anchor_of = self._anchor_of
        for active in self._active:
            d = active.detector
            key = anchor_of.get(id(d)) if hits is not None else None
            ready = starts.get(key) if key is not None else None
            if ready is not None and hits is not None:  # in range, not empty (_anchored_spans)
                literals = d.literals
                spans = ready if not literals or any("lit:" + lit in hits for lit in literals) \
                    else []
            else:
                spans = [span for span in self._spans(d, window, low, starts, hits)
                         if keep_lo <= span[0] < keep_hi and span[0] != span[1]]
            if spans:
                found.append((active, spans))
                total += len(spans)
        context_hits = None
        if hits is not None and total >= CONTEXT_INDEX_AT and self._context_words is not None:
            context_hits = self._context_words.scan(window)
        seq = 0
        for active, spans in found:
            d = active.detector
            min_score = active.rule.min_score
            neg = d.negative_before
            neg_ends = NEGATIVE_ENDS.get(neg) if neg is not None else None
            context = active.context
            words: _Words | None = None
            if context is not None and context_hits is not None and active.words:
                words = indexed.get(active.words)
                if words is None:
                    words = indexed[active.words] = _Words(low, active.words, context_hits)
                if not words.starts:  # none of its words in this window
                    context = words = None
            word_starts, word_ends = (words.starts, words.ends) if words is not None else ([], [])
            n_words = len(word_starts)
            last_word = word_starts[-1] if word_starts else -1
            bound = active.bound
            check = d.check
            priority = -d.priority
            context_boost = d.context_boost
            if neg is None and context is None and bound is None and offsets is None:
                # nothing to look at around the values (most of a dense export): the loop
                # below without its branches; numbering keeps the order of the candidates
                for s, e in spans:
                    value = window[s:e]
                    seq += 1
                    score = check(value)
                    if score is not None and score >= min_score:
                        append((s + lo, e + lo, priority, -score, 1, seq, active, value, None))
                continue
            if context is None and offsets is None:
                # no context words in this window: the loop below without the look-ups
                for s, e in spans:
                    if neg is not None and (neg_ends is None or (s and (
                            low[s - 1] in neg_ends or low[s - 1].isspace()))) \
                            and neg.search(low, max(0, s - 12), s):
                        continue
                    value = window[s:e]
                    seq += 1
                    if bound is not None:
                        ceiling = bound(value)
                        if ceiling >= min_score:
                            append((s + lo, e + lo, priority, -ceiling, 0, seq, active, value,
                                    None))
                        continue
                    score = check(value)
                    if score is not None and score >= min_score:
                        append((s + lo, e + lo, priority, -score, 1, seq, active, value, None))
                continue
            for s, e in spans:
                if neg is not None:
                    if neg_ends is None or (s and (low[s - 1] in neg_ends
                                                    or low[s - 1].isspace())):
                        if neg.search(low, max(0, s - 12), s):
                            continue
                value = window[s:e]
                boost: float | None = None
                if words is not None:  # words.within(s - BEFORE, s) or within(e, e + AFTER)
                    # no word starts at or after s - BEFORE: neither look-up finds one
                    i = bisect_left(word_starts, s - CONTEXT_BEFORE) \
                        if s - CONTEXT_BEFORE <= last_word else n_words
                    while i < n_words and word_starts[i] < s:
                        if word_ends[i] <= s:
                            boost = context_boost
                            break
                        i += 1
                    else:  # on from the first word starting at or after s
                        reach = e + CONTEXT_AFTER
                        while i < n_words and word_starts[i] < e:
                            i += 1
                        while i < n_words and word_starts[i] < reach:
                            if word_ends[i] <= reach:
                                boost = context_boost
                                break
                            i += 1
                elif context is not None and (
                        context.search(low, max(0, s - CONTEXT_BEFORE), s)
                        or context.search(low, e, min(size, e + CONTEXT_AFTER))):
                    boost = context_boost
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
                    append((start, end, priority, -ceiling, 0, seq, active, value, boost))
                    continue
                score = check(value)
                if score is None:
                    continue
                if boost is not None:
                    score = min(1.0, score + boost)
                if score < min_score:
                    continue
                append((start, end, priority, -score, 1, seq, active, value, boost))
        return _resolve(cands, carried)


_Entry = tuple[int, int, int, float, int, int, _Active, str, "float | None"]
"""A candidate: start, end, -priority, -score (or -ceiling), checked, sequence number,
detector, value, context boost."""

_Kept = _Entry
"""A finding of a window: a candidate whose check has run (checked 1, -score the negated
real score); the value is decoded in an escaped window. A candidate checked when it
was selected is kept as it is."""


def _checked(c: _Entry, score: float) -> _Kept:
    """A deferred candidate after its check gave ``score``."""
    return (c[0], c[1], c[2], -score, 1, c[5], c[6], c[7], c[8])


def _resolve(cands: list[_Entry], carried: list[tuple[int, int]]) -> list[_Kept]:
    """The greedy resolution of :meth:`Classifier._select`, one group of overlapping
    candidates at a time.

    A candidate is dropped only for overlapping one kept before it, so candidates that
    overlap nothing are kept (after their check, if it was deferred) and each group of
    candidates connected by overlaps is resolved on its own, in the same order as the
    whole window would be: its members only ever meet each other. Spans are never
    empty (a candidate of an escaped window maps to at least one original character).
    """
    cands.sort(key=itemgetter(0))
    if carried:  # kept before anything in this window
        reach = max(end for _, end in carried)
        cands = [c for c in cands if c[0] >= reach
                 or not any(c[0] < end and start < c[1] for start, end in carried)]
    kept: list[_Kept] = []
    keep = kept.append
    i, n = 0, len(cands)
    while i < n:
        c = cands[i]
        reach = c[1]
        j = i + 1
        while j < n and cands[j][0] < reach:
            if cands[j][1] > reach:
                reach = cands[j][1]
            j += 1
        if j == i + 1:  # overlaps nothing
            if c[4]:
                keep(c)
            else:
                active = c[6]
                score = _score(active.detector.check(c[7]), c[8])
                if score is not None and score >= active.rule.min_score:
                    keep(_checked(c, score))
        elif j == i + 2:  # a pair (an SSN and the phone shape in it): no heap needed
            winner = _resolve_pair(c, cands[i + 1])
            if winner is not None:
                keep(winner)
        else:
            kept.extend(_resolve_group(cands[i:j]))
        i = j
    return kept


def _resolve_pair(first: _Entry, second: _Entry) -> _Kept | None:
    """:func:`_resolve_group` of two overlapping candidates: the head of the order is
    kept once checked (the other overlaps it); a deferred check runs at the head and
    its candidate re-enters at the real score, or leaves.

    Priority and score nearly always decide the head (an SSN before the phone shape in
    it; an international phone number, deferred at 0.7, before the national one inside
    it at 0.6), and then nothing else is compared; on a tie :func:`_resolve_pair_keys`
    compares the whole order."""
    if first[2] == second[2] and first[3] == second[3]:
        return _resolve_pair_keys(first, second)
    head, other = (first, second) if (first[2], first[3]) < (second[2], second[3]) \
        else (second, first)
    if head[4]:
        return head
    active = head[6]
    score = _score(active.detector.check(head[7]), head[8])
    if score is not None and score >= active.rule.min_score:
        if (head[2], -score) < (other[2], other[3]):  # still the head, now checked
            return _checked(head, score)
        return _resolve_pair_keys(first, second)  # rare: the whole order decides
    if other[4]:  # the head left: the other one is alone
        return other
    active = other[6]
    score = _score(active.detector.check(other[7]), other[8])
    if score is not None and score >= active.rule.min_score:
        return _checked(other, score)
    return None


def _resolve_pair_keys(first: _Entry, second: _Entry) -> _Kept | None:
    """:func:`_resolve_pair` comparing the whole order of :func:`_resolve_group`."""
    order = [((c[2], c[3], c[4], c[0] - c[1], c[0], c[5]), c) for c in (first, second)]
    while order:
        at = 0 if len(order) == 1 or order[0][0] < order[1][0] else 1  # keys never tie
        key, c = order.pop(at)
        if key[2]:
            return c if c[4] else _checked(c, -key[1])
        active = c[6]
        score = _score(active.detector.check(c[7]), c[8])
        if score is not None and score >= active.rule.min_score:
            order.append(((key[0], -score, 1, key[3], key[4], key[5]), c))
    return None


def _resolve_group(group: list[_Entry]) -> list[_Kept]:
    """Overlapping candidates resolved in the order priority, score, checked first,
    length, position, sequence; a deferred check runs at the head of the order and its
    candidate re-enters at the real score (never before its ceiling)."""
    order = [(c[2], c[3], c[4], c[0] - c[1], c[0], c[5], k) for k, c in enumerate(group)]
    heapify(order)
    spans: list[tuple[int, int]] = []
    kept: list[_Kept] = []
    while order:
        neg_priority, neg_score, checked, length, start, seq, k = heappop(order)
        end = start - length
        overlaps = False
        for s, e in spans:  # a loop, not any(): groups are small, and this runs per pop
            if start < e and s < end:
                overlaps = True
                break
        if overlaps:
            continue
        c = group[k]
        active = c[6]
        if not checked:
            score = _score(active.detector.check(c[7]), c[8])
            if score is not None and score >= active.rule.min_score:
                heappush(order, (neg_priority, -score, 1, length, start, seq, k))
            continue
        spans.append((start, end))
        kept.append(c if c[4] else _checked(c, -neg_score))
    kept.sort(key=itemgetter(0))
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
