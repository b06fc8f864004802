"""Credentials in log lines, found by the DLP engine's SECRETS pack.

Lines are scanned in batches (one DLP pass over many lines joined by newlines, offsets
mapped back to lines), which costs far less than a pass per line. :meth:`redact`
removes credentials from evidence lines before they leave the engine.

Most batches of a log hold no credential at all, so a batch first goes through a gate
of *anchors*: for each detector of the pack, a set of strings one of which every
finding of that detector needs (:func:`anchors_of`: the literal pieces its pattern
requires, its ``near`` words, or the literals the engine itself requires, whichever is
the most selective). One Hyperscan pass looks for all of them at once, over the text
the classifier scans (escapes decoded); a batch without any has no finding and the
classifier does not run. Each anchor also has a *reach* (:func:`reach_of`): its line,
for a detector whose matches stay in one line (and there it counts only next to one
of the further strings the pattern requires, as ``@`` after ``://``), or the near
window around a near word. In an ASCII batch without escapes, the classifier runs
only over the lines those reaches cover. A batch longer than one classifier window,
with many anchors, or with one of a detector without a reach, and every batch where
the ``hyperscan`` package is missing, goes to the classifier whole. Either way
:meth:`SecretFinder.scan` gives what :meth:`SecretFinder.scan_exhaustive` (the
classifier over every batch) gives.
"""

from __future__ import annotations

import importlib
import re
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from secops.dlp import Classifier, Finding, Policy, redact, unescape
from secops.dlp.detectors import Detector
from secops.dlp.engine import CHUNK, CONTEXT_AFTER, CONTEXT_BEFORE

_hs: Any
try:  # optional, like the DLP engine's own prefilter (secops.dlp.prefilter)
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the environment
    _hs = None

_sre: Any = importlib.import_module("re._parser")  # re's own parser (Python 3.11+)

PACK = "SECRETS"

_FINITE_MAX = 64
"""Most strings a piece of a pattern may stand for to be expanded into anchors."""
_CLASS_MAX = 8
"""Most characters of a character class expanded into anchors."""
_REPEAT_MAX = 4
"""Most repetitions of a bounded repeat expanded into anchors."""

_ZERO_WIDTH = (_sre.ASSERT, _sre.ASSERT_NOT, _sre.AT)
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)


def _product(left: set[str], right: set[str]) -> set[str] | None:
    if len(left) * len(right) > _FINITE_MAX:
        return None
    return {a + b for a in left for b in right}


def _finite(items: Any) -> set[str] | None:
    """Every string a parsed sequence matches, when they are few; assertions are
    skipped (they match no characters, so the strings are a superset)."""
    strings: set[str] | None = {""}
    for item in items:
        part = _finite_item(item)
        if part is None or strings is None:
            return None
        strings = _product(strings, part)
    return strings


def _finite_item(item: tuple[Any, Any]) -> set[str] | None:
    op, av = item
    if op is _sre.LITERAL:
        return {chr(av)}
    if op in _ZERO_WIDTH:
        return {""}
    if op is _sre.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is _sre.LITERAL:
                chars.add(chr(value))
            elif kind is _sre.RANGE and value[1] - value[0] < _CLASS_MAX:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:  # NEGATE, CATEGORY, wide ranges
                return None
        return chars if len(chars) <= _CLASS_MAX else None
    if op is _sre.BRANCH:
        strings: set[str] = set()
        for alternative in av[1]:
            part = _finite(alternative)
            if part is None:
                return None
            strings |= part
        return strings if len(strings) <= _FINITE_MAX else None
    if op is _sre.SUBPATTERN:
        _group, add_flags, del_flags, body = av
        return _finite(body) if not add_flags and not del_flags else None
    if op in _REPEATS:
        low, high, body = av
        if high > _REPEAT_MAX:
            return None
        one = _finite(body)
        if one is None:
            return None
        strings = set()
        power: set[str] | None = {""}
        for count in range(high + 1):
            if power is None:
                return None
            if count >= low:
                strings |= power
            power = _product(power, one)
        return strings if len(strings) <= _FINITE_MAX else None
    return None  # ANY, NOT_LITERAL, GROUPREF, ATOMIC_GROUP, ...


def _better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The more selective of two anchor sets: the longer shortest string, then fewer."""
    if a is None:
        return b
    if b is None:
        return a
    key_a = (min(map(len, a)), -len(a))
    key_b = (min(map(len, b)), -len(b))
    return b if key_b > key_a else a


def _prefixes(items: Any) -> set[str]:
    """Strings one of which every match of a parsed sequence starts with (``{""}``
    when nothing is known): the expansion of its leading pieces with few strings."""
    run: set[str] = {""}
    for item in items:
        part = _finite_item(item)
        if part is None:
            return _product(run, _prefixes_item(item)) or run
        grown = _product(run, part)
        if grown is None:
            return run
        run = grown
    return run


def _prefixes_item(item: tuple[Any, Any]) -> set[str]:
    op, av = item
    if op is _sre.BRANCH:
        strings: set[str] = set()
        for alternative in av[1]:
            strings |= _prefixes(alternative)
        return strings if len(strings) <= _FINITE_MAX else {""}
    if op is _sre.SUBPATTERN and not av[1] and not av[2]:
        return _prefixes(av[3])
    if op in _REPEATS and av[0] >= 1:
        return _prefixes(av[2])
    return {""}


def _requirements(items: Any) -> list[frozenset[str]]:
    """Sets of non-empty strings such that every match of a parsed sequence contains
    one string of each set.

    Consecutive pieces with few strings each (literals, small classes and
    alternations, short bounded repeats; assertions match no characters) form a run
    whose matched text is one of the run's expansions, followed by a start of the
    next piece (:func:`_prefixes`); a piece that must match at least once (a repeat
    with a minimum of one or more, a group, every alternative of an alternation)
    contributes its own required strings.
    """
    found: list[frozenset[str]] = []
    run: set[str] = {""}

    def close(strings: set[str]) -> None:
        if strings and "" not in strings:
            found.append(frozenset(strings))

    for item in items:
        part = _finite_item(item)
        if part is not None:
            grown = _product(run, part)
            if grown is not None:
                run = grown
                continue
            close(run)
            run = part
            continue
        close(_product(run, _prefixes_item(item)) or run)
        run = {""}
        op, av = item
        if op is _sre.BRANCH:
            options = [_best(_requirements(alternative)) for alternative in av[1]]
            if all(o is not None for o in options):
                found.append(frozenset().union(*options))  # type: ignore[arg-type]
        elif op is _sre.SUBPATTERN and not av[1] and not av[2]:
            found += _requirements(av[3])
        elif op in _REPEATS and av[0] >= 1:
            found += _requirements(av[2])
    close(run)
    return found


def _best(sets: list[frozenset[str]]) -> frozenset[str] | None:
    """The most selective set (:func:`_better`; the first on a tie)."""
    best: frozenset[str] | None = None
    for strings in sets:
        best = _better(best, strings)
    return best


@lru_cache(maxsize=256)
def _parse(pattern: re.Pattern[str]) -> Any:
    """``pattern`` parsed by ``re``'s own parser (read only)."""
    return _sre.parse(pattern.pattern, pattern.flags)


@lru_cache(maxsize=256)
def _pattern_requirements(pattern: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    if pattern.flags & re.IGNORECASE:
        return ()
    return tuple(_requirements(_parse(pattern).data))


def pattern_requirements(pattern: re.Pattern[str]) -> list[frozenset[str]]:
    """Sets of strings such that every match of ``pattern`` contains one string of
    each set (case-sensitive); none for a case-insensitive pattern."""
    return list(_pattern_requirements(pattern))


def pattern_anchors(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` contains (the most selective of
    :func:`pattern_requirements`), or None when none is known."""
    return _best(pattern_requirements(pattern))


def anchors_of(detector: Detector) -> tuple[frozenset[str], bool] | None:
    """Strings one of which every finding of ``detector`` in an ASCII text holds, and
    whether they are matched ignoring case; None when the detector has none.

    Candidates, each a condition the classifier's own steps impose on a window that
    yields a finding: the strings its pattern requires (:func:`pattern_anchors`; not
    for a detector with a ``finder``, which finds candidates its own way), its ``near``
    words (lower-case; it only runs around one, found ignoring case) and its
    ``literals`` (it is not run without one). The most selective is kept (the longer
    shortest string, then fewer strings; on a tie the earlier in that order). Sets
    holding a non-ASCII or an empty string are left out.
    """
    options: list[tuple[frozenset[str], bool]] = []
    if detector.finder is None:
        required = pattern_anchors(detector.pattern)
        if required is not None:
            options.append((required, False))
    if detector.near:
        options.append((frozenset(detector.near), True))
    if detector.literals:
        options.append((frozenset(detector.literals), False))
    usable = [(strings, caseless) for strings, caseless in options
              if all(s and s.isascii() for s in strings)]
    if not usable:
        return None
    return max(usable, key=lambda o: (min(map(len, o[0])), -len(o[0])))


_SAFE_CATEGORIES = (_sre.CATEGORY_DIGIT, _sre.CATEGORY_WORD, _sre.CATEGORY_NOT_SPACE,
                    _sre.CATEGORY_NOT_LINEBREAK)
"""Character categories without a newline."""
_SAFE_AT = (_sre.AT_BOUNDARY, _sre.AT_NON_BOUNDARY)
"""Assertions that see a newline as they see the start or end of the text."""


def _in_line(items: Any, dotall: bool) -> bool:
    """True when no piece of a parsed pattern, look-arounds included, matches a
    newline and its only position assertions are word boundaries: then a newline
    next to a match acts as the end of the text does, and matches never span lines."""
    for op, av in items:
        if op is _sre.LITERAL:
            if av == 10:
                return False
        elif op is _sre.NOT_LITERAL:
            if av != 10:
                return False
        elif op is _sre.ANY:
            if dotall:
                return False
        elif op is _sre.IN:
            if av and av[0][0] is _sre.NEGATE:
                return False
            for kind, value in av:
                if kind is _sre.LITERAL:
                    if value == 10:
                        return False
                elif kind is _sre.RANGE:
                    if value[0] <= 10 <= value[1]:
                        return False
                elif kind is not _sre.CATEGORY or value not in _SAFE_CATEGORIES:
                    return False
        elif op is _sre.AT:
            if av not in _SAFE_AT:
                return False
        elif op is _sre.BRANCH:
            if not all(_in_line(alternative, dotall) for alternative in av[1]):
                return False
        elif op is _sre.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if not _in_line(body, (dotall or bool(add_flags & re.DOTALL))
                            and not del_flags & re.DOTALL):
                return False
        elif op in _REPEATS:
            if not _in_line(av[2], dotall):
                return False
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT, _sre.ATOMIC_GROUP):
            if not _in_line(av[1] if op is not _sre.ATOMIC_GROUP else av, dotall):
                return False
        elif op is _sre.GROUPREF_EXISTS:
            _group, yes, no = av
            if not _in_line(yes, dotall) or (no is not None and not _in_line(no, dotall)):
                return False
        elif op is not _sre.GROUPREF:  # a group's text: already checked
            return False
    return True


def _behind(items: Any) -> int | None:
    """The most characters before a match's start its look-behinds examine (their
    widths added up), or None when that is not known."""
    total = 0
    for op, av in items:
        nested: list[Any] = []
        if op in (_sre.ASSERT, _sre.ASSERT_NOT):
            direction, body = av
            if direction < 0:
                width = body.getwidth()[1]
                if width >= _sre.MAXREPEAT:
                    return None
                total += width
            nested = [body]
        elif op is _sre.BRANCH:
            nested = list(av[1])
        elif op is _sre.SUBPATTERN:
            nested = [av[3]]
        elif op in _REPEATS:
            if av[1] > 1 and any(o in (_sre.ASSERT, _sre.ASSERT_NOT) for o, _ in av[2]):
                return None  # repeated look-behinds: not summed here
            nested = [av[2]]
        elif op is _sre.ATOMIC_GROUP:
            nested = [av]
        elif op is _sre.GROUPREF_EXISTS:
            nested = [b for b in av[1:] if b is not None]
        for body in nested:
            inner = _behind(body)
            if inner is None:
                return None
            total += inner
    return total


def _overlap(a: str, b: str) -> bool:
    """Whether occurrences of ``a`` and ``b`` can overlap."""
    return (a in b or b in a or any(a.endswith(b[:k]) for k in range(1, len(b)))
            or any(b.endswith(a[:k]) for k in range(1, len(a))))


@dataclass(frozen=True, slots=True)
class Reach:
    """Where the findings of one detector that an occurrence of its anchor stands for
    may lie, with everything the classifier looks at for them: the anchor's line
    (``line``) or the anchor itself, widened by ``before`` and ``after`` characters.
    For a line, ``also``, when not empty, are further strings its pattern requires one
    of: a line without one of them has no candidate of the detector."""

    line: bool
    before: int
    after: int
    also: tuple[str, ...] = ()


def reach_of(detector: Detector, anchors: tuple[frozenset[str], bool]) -> Reach | None:
    """The :class:`Reach` of an occurrence of one of ``anchors`` (from :func:`anchors_of`)
    for the classifier's findings of ``detector``, or None when it has none.

    * Anchors its pattern requires, for a pattern whose matches stay in one line and
      see a newline as the end of the text (:func:`_in_line`), run over the whole
      window (no ``near``, ``finder``, ``shared`` or ``seed``) and gated by literals
      inside the anchors: a line holding no anchor has no candidate of the detector,
      and a line's candidates are those of the line alone.
    * ``near`` words, for a detector without ``literals``, ``shared`` or ``seed``: its
      candidates lie in ``near_window`` characters around the word, and its pattern
      looks back at most the widths of its look-behinds before them.

    A detector with ``negative_before`` (words looked for before a candidate) has none.

    Context words count ``CONTEXT_BEFORE`` characters before a candidate (and one more,
    for the word's boundary) and ``CONTEXT_AFTER`` after it.
    """
    strings, caseless = anchors
    if (detector.shared is not None or detector.seed is not None
            or detector.negative_before is not None):  # looks back before a candidate
        return None
    before, after = (CONTEXT_BEFORE + 1, CONTEXT_AFTER) if detector.context else (0, 0)
    parsed = _parse(detector.pattern)
    if detector.near and caseless and strings == frozenset(detector.near):
        if detector.literals:
            return None
        behind = _behind(parsed.data)
        if behind is None:
            return None
        window = detector.near_window
        return Reach(False, window + behind + before, window + after)
    if (not caseless and not detector.near and detector.finder is None
            and strings == pattern_anchors(detector.pattern)
            and parsed.getwidth()[0] > 0
            and _in_line(parsed.data, bool(detector.pattern.flags & re.DOTALL))
            and (not detector.literals
                 or all(any(lit in s for lit in detector.literals) for s in strings))):
        also: frozenset[str] | None = None
        for required in pattern_requirements(detector.pattern):
            if (all(r.isascii() for r in required)
                    and not all(any(r in s for r in required) for s in strings)  # implied
                    and not any(_overlap(a, r) for a in strings for r in required)):
                also = _better(also, required)
        return Reach(True, before, after, tuple(sorted(also or ())))
    return None


_LOWERS_TO_ASCII = "\u212a"
"""The one character outside ASCII that ``str.lower`` turns into an ASCII one (KELVIN
SIGN, 'k'), one for one: the classifier may find a near word holding it. (``'\u0130'``
lowers to two characters, which makes the classifier lower only ASCII letters.)"""

_MAX_HITS = 32
"""Anchor occurrences past which a batch goes to the classifier whole."""


class _Gate:
    """One Hyperscan database of every detector's anchors: :meth:`scan` gives where
    they occur.

    A detector whose reach is a line with further required strings (``Reach.also``)
    is looked for as a line holding an anchor and one of those, in either order (they
    cannot overlap: see :func:`reach_of`); the others by their anchors alone."""

    def __init__(self, anchors: list[tuple[frozenset[str], bool, Reach | None, bool]]) -> None:
        # expression -> (flags, anchor length or None for a line, (reach, wanted) of
        # each detector it stands for)
        keyed: dict[bytes, tuple[int, int | None, list[tuple[Reach | None, bool]]]] = {}
        for strings, caseless, reach, wanted in anchors:
            if reach is not None and reach.also:
                first = b"(?:" + b"|".join(_escape(x) for x in sorted(strings)) + b")"
                then = b"(?:" + b"|".join(_escape(x) for x in reach.also) + b")"
                expression = first + b"[^\\n]*" + then + b"|" + then + b"[^\\n]*" + first
                keyed.setdefault(expression, (0, None, []))[2].append((reach, wanted))
                continue
            flags = _hs.HS_FLAG_CASELESS if caseless else 0
            for x in sorted(strings):
                expression = _escape(x.lower() if caseless else x)
                keyed.setdefault(expression, (flags, len(x), []))[2].append((reach, wanted))
                if keyed[expression][0] != flags:  # one string both ways: ignoring case
                    keyed[expression] = (_hs.HS_FLAG_CASELESS, len(x), keyed[expression][2])
        expressions = sorted(keyed)
        self.expressions = tuple(expressions)
        self.sizes = tuple(keyed[e][1] for e in expressions)
        self.owners = tuple(tuple(keyed[e][2]) for e in expressions)
        self.caseless = any(keyed[e][0] for e in expressions)
        # Literals and line expressions compile apart in a few milliseconds each (about
        # 30 together); scanning twice costs less than that over a log.
        self._dbs = []
        for lines in (False, True):
            ids = [i for i, e in enumerate(expressions) if (keyed[e][1] is None) is lines]
            if ids:
                db = _hs.Database()
                db.compile(expressions=[expressions[i] for i in ids], ids=ids,
                           elements=len(ids), flags=[keyed[expressions[i]][0] for i in ids])
                self._dbs.append(db)
        self._local = threading.local()

    def scan(self, data: bytes) -> list[tuple[int, int]] | None:
        """(expression index, end) of each anchor occurrence in ``data`` (ASCII or UTF-8
        bytes; an ASCII string's offsets are the byte offsets), or None past
        :data:`_MAX_HITS` of them."""
        scratches = getattr(self._local, "scratches", None)
        if scratches is None:  # scratch spaces of their own per thread
            scratches = self._local.scratches = [_hs.Scratch(db) for db in self._dbs]
        found: list[tuple[int, int]] = []
        try:
            for db, scratch in zip(self._dbs, scratches, strict=True):
                db.scan(data, match_event_handler=_on_match, context=found, scratch=scratch)
        except _hs.ScanTerminated:
            return None
        return found

    def spans(self, data: bytes, hits: list[tuple[int, int]]
              ) -> tuple[bool, list[tuple[int, int]] | None]:
        """Whether ``hits`` in ``data`` may stand for a wanted finding, and the spans of
        whole lines (start, end before the newline) their reaches cover; None for the
        spans when one has no reach."""
        wanted_any = False
        spans: list[tuple[int, int]] | None = []
        size = len(data)
        for index, end in hits:
            anchor = self.sizes[index]
            for reach, wanted in self.owners[index]:
                wanted_any = wanted_any or wanted
                if reach is None:
                    spans = None
                if spans is None or reach is None:
                    continue
                if reach.line:  # the line of the occurrence's last character
                    lo = data.rfind(b"\n", 0, end - 1) + 1 - reach.before
                    hi = data.find(b"\n", end - 1)
                    hi = (size if hi == -1 else hi) + reach.after
                else:
                    assert anchor is not None
                    lo, hi = end - anchor - reach.before, end + reach.after
                lo = data.rfind(b"\n", 0, max(0, lo)) + 1
                hi = data.find(b"\n", min(size, hi))
                spans.append((lo, size if hi == -1 else hi))
        return wanted_any, spans


@lru_cache(maxsize=16)
def _compiled(anchors: tuple[tuple[frozenset[str], bool, Reach | None, bool], ...]) -> _Gate:
    """A cached :class:`_Gate` (its scans are thread-safe)."""
    return _Gate(list(anchors))


def _on_match(id_: int, _from: int, to: int, _flags: int, found: list[tuple[int, int]]) -> bool:
    found.append((id_, to))
    return len(found) > _MAX_HITS  # True stops the scan


def _escape(s: str) -> bytes:
    return "".join(f"\\x{ord(c):02x}" for c in s).encode()


class SecretFinder:
    """Credentials of ``types`` (every type when empty) in batches of lines, found by
    the shipped SECRETS pack, or by the packs of ``policy`` when given."""

    def __init__(self, types: Sequence[str] = (), *, policy: Policy | None = None) -> None:
        if policy is None:
            policy = Policy(tuple(p for p in Policy.default().packs if p.name == PACK))
        self.classifier = Classifier(policy)
        self.types = frozenset(types)
        self.batches_skipped = 0
        """Batches the anchor gate passed over (no classifier run)."""
        self.batches_narrowed = 0
        """Batches the classifier ran over only around their anchors."""
        self._narrow = True  # every detector has anchors (else cleared by _compile_gate)
        self._gate = self._compile_gate()
        self._nothing_wanted = bool(self.types) and not any(
            d.type in self.types for d, _ in self.classifier.policy.detectors())

    def _compile_gate(self) -> _Gate | None:
        """The gate over the anchors of every detector of the pack; None when a wanted
        one has no anchors (a wanted finding needs a candidate of its own detector)
        or Hyperscan is missing. Another detector without anchors only keeps batches
        from being narrowed (:meth:`scan`)."""
        if _hs is None:
            return None
        anchors = []
        for detector, _rule in self.classifier.policy.detectors():
            wanted = not self.types or detector.type in self.types
            found = anchors_of(detector)
            if found is None:
                if wanted:
                    return None
                self._narrow = False
                continue
            anchors.append((*found, reach_of(detector, found), wanted))
        if not any(wanted for *_, wanted in anchors):
            return None
        return _compiled(tuple(anchors))

    def _wanted(self, finding: Finding) -> bool:
        return not self.types or finding.type in self.types

    def scan(self, lines: Sequence[str]) -> dict[int, list[Finding]]:
        """Index of each line holding a credential -> its findings (offsets in the
        batch's text: the lines joined by newlines).

        The same as :meth:`scan_exhaustive`, by way of the anchors: a batch whose
        occurrences stand for no wanted finding (:meth:`_Gate.spans`) is skipped; in
        an ASCII batch without escapes, the classifier runs only over the runs of
        whole lines the occurrences' reaches cover, when they are few and short:
        outside of them it finds nothing, and inside each what it finds in the whole
        batch (a run holds every candidate that overlaps one of its candidates, and
        all the classifier looks at for them: see :func:`reach_of`).
        """
        text = "\n".join(lines)
        if self._nothing_wanted:
            self.batches_skipped += 1
            return {}
        gate = self._gate
        if gate is None or len(text) > CHUNK:  # more than one classifier window
            return self._classify(lines, text)
        seen = text  # the text the classifier scans: escapes decoded
        escaped = self.classifier.decode_escapes and unescape.needs_decoding(text)
        if escaped:
            decoded = unescape.decode(text)
            if decoded is not None:
                seen = decoded[0]
        ascii_only = seen.isascii()
        if ascii_only:
            data = seen.encode("ascii")
        elif gate.caseless and _LOWERS_TO_ASCII in seen:
            return self._classify(lines, text)
        else:  # ASCII anchors are where they are in the characters (UTF-8 keeps ASCII)
            data = seen.encode("utf-8", "surrogatepass")
        hits = gate.scan(data)
        if hits is None:
            return self._classify(lines, text)
        wanted, spans = gate.spans(data, hits)
        if not wanted:
            self.batches_skipped += 1
            return {}
        if spans is None or not ascii_only or escaped or not self._narrow:
            return self._classify(lines, text)
        spans.sort()
        segments: list[tuple[int, int]] = []
        for lo, hi in spans:
            if segments and lo <= segments[-1][1] + 1:
                if hi > segments[-1][1]:
                    segments[-1] = (segments[-1][0], hi)
            else:
                segments.append((lo, hi))
        if sum(hi - lo for lo, hi in segments) > len(text) // 2:
            return self._classify(lines, text)
        self.batches_narrowed += 1
        return self._classify(lines, text, segments)

    def scan_exhaustive(self, lines: Sequence[str]) -> dict[int, list[Finding]]:
        """:meth:`scan` without the anchors: the classifier over every batch."""
        return self._classify(lines, "\n".join(lines))

    def _classify(self, lines: Sequence[str], text: str,
                  segments: Sequence[tuple[int, int]] = ()) -> dict[int, list[Finding]]:
        """The classifier's findings in ``text`` (or in each of its ``segments``) by line."""
        found: dict[int, list[Finding]] = {}
        starts: list[int] | None = None
        parts = ((text[lo:hi], lo) for lo, hi in segments) if segments else ((text, 0),)
        for part, base in parts:
            for f in self.classifier.iter_text(part, base=base):
                if not self._wanted(f):
                    continue
                if starts is None:
                    starts = []
                    pos = 0
                    for line in lines:
                        starts.append(pos)
                        pos += len(line) + 1
                i = bisect_right(starts, f.start) - 1
                found.setdefault(i, []).append(f)
        return found

    def redact(self, line: str) -> str:
        """``line`` with every credential the classifier finds in it (of any type)
        replaced. A line in which :meth:`scan` of every type finds none (its anchors
        absent, most often) is returned as it is without a classifier pass."""
        every = self if not self.types else self._every_type()
        if not every.scan([line]):
            return line
        findings = list(self.classifier.iter_text(line))
        return redact(line, findings, "type") if findings else line

    def _every_type(self) -> SecretFinder:
        found = self.__dict__.get("_every")
        if found is None:
            found = self._every = SecretFinder(policy=self.classifier.policy)
        return found
