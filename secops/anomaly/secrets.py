"""Credentials in log lines, found by the DLP engine's SECRETS pack.

Lines are scanned in batches (one DLP pass over many lines joined by newlines, offsets
mapped back to lines), which costs far less than a pass per line. :meth:`redact`
removes credentials from evidence lines before they leave the engine.

Most batches of a log hold no credential at all, so a batch first goes through a gate
of *anchors*: for each detector of the pack, a set of strings one of which every
finding of that detector contains (:func:`anchors_of`: the literal pieces its pattern
requires, its ``near`` words, or the literals the engine itself requires, whichever is
the most selective). One Hyperscan pass looks for all of them at once; a batch without
any has no finding and the classifier does not run. The gate looks at the text the
classifier would scan (escapes decoded) and only at ASCII text of one classifier
window; any other batch, and every batch where the ``hyperscan`` package is missing,
goes to the classifier directly. Either way :meth:`SecretFinder.scan` gives what
:meth:`SecretFinder.scan_exhaustive` (the classifier over every batch) gives.
"""

from __future__ import annotations

import importlib
import re
import threading
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from secops.dlp import Classifier, Finding, Policy, redact, unescape
from secops.dlp.detectors import Detector
from secops.dlp.engine import CHUNK

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


def _required(items: Any) -> frozenset[str] | None:
    """A set of non-empty strings one of which every match of a parsed sequence
    contains, or None when none is known.

    Consecutive pieces with few strings each (literals, small classes and
    alternations, short bounded repeats; assertions match no characters) form a run
    whose matched text is one of the run's expansions, followed by a start of the
    next piece (:func:`_prefixes`); a piece that must match at least once (a repeat
    with a minimum of one or more, a group, every alternative of an alternation)
    contributes its own required strings. The most selective candidate is kept.
    """
    best: frozenset[str] | None = None
    run: set[str] = {""}

    def close(strings: set[str]) -> None:
        nonlocal best
        if strings and "" not in strings:
            best = _better(best, frozenset(strings))

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
            options = [_required(alternative) for alternative in av[1]]
            if all(o is not None for o in options):
                best = _better(best, frozenset().union(*options))  # type: ignore[arg-type]
        elif op is _sre.SUBPATTERN and not av[1] and not av[2]:
            best = _better(best, _required(av[3]))
        elif op in _REPEATS and av[0] >= 1:
            best = _better(best, _required(av[2]))
    close(run)
    return best


def pattern_anchors(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Strings one of which every match of ``pattern`` contains (case-sensitive), or
    None when none is known (case-insensitive patterns included)."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        parsed = _sre.parse(pattern.pattern, pattern.flags)
    except re.error:  # pragma: no cover - the pattern compiled
        return None
    return _required(parsed.data)


def anchors_of(detector: Detector) -> tuple[frozenset[str], bool] | None:
    """Strings one of which every finding of ``detector`` in an ASCII text holds, and
    whether they are matched ignoring case; None when the detector has none.

    Candidates, each a condition the classifier's own steps impose on a window that
    yields a finding: the detector's ``literals`` (it is not run without one), its
    ``near`` words (lower-case; it only runs around one, found ignoring case) and the
    strings its pattern requires (:func:`pattern_anchors`; not for a detector with a
    ``finder``, which finds candidates its own way). Sets holding a non-ASCII or an
    empty string are left out.
    """
    options: list[tuple[frozenset[str], bool]] = []
    if detector.literals:
        options.append((frozenset(detector.literals), False))
    if detector.near:
        options.append((frozenset(detector.near), True))
    if detector.finder is None:
        required = pattern_anchors(detector.pattern)
        if required is not None:
            options.append((required, False))
    usable = [(strings, caseless) for strings, caseless in options
              if all(s and s.isascii() for s in strings)]
    if not usable:
        return None
    return max(usable, key=lambda o: (min(map(len, o[0])), -len(o[0])))


class _Gate:
    """One Hyperscan database of every anchor: :meth:`any_in` tells whether an ASCII
    text holds one."""

    def __init__(self, anchors: list[tuple[frozenset[str], bool]]) -> None:
        exact = sorted({s for strings, caseless in anchors if not caseless for s in strings})
        folded = sorted({s.lower() for strings, caseless in anchors if caseless for s in strings})
        exprs = [_escape(s) for s in exact] + [_escape(s) for s in folded]
        flags = [_hs.HS_FLAG_SINGLEMATCH] * len(exact)
        flags += [_hs.HS_FLAG_SINGLEMATCH | _hs.HS_FLAG_CASELESS] * len(folded)
        self.strings = (*exact, *folded)
        self._db = _hs.Database()
        self._db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                         flags=flags)
        self._local = threading.local()

    def any_in(self, text: str) -> bool:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:  # one scratch space per thread
            scratch = self._local.scratch = _hs.Scratch(self._db)
        found: list[int] = []
        self._db.scan(text.encode("ascii"), match_event_handler=_on_match, context=found,
                      scratch=scratch)
        return bool(found)


def _on_match(id_: int, _from: int, _to: int, _flags: int, found: list[int]) -> None:
    found.append(id_)


def _escape(s: str) -> bytes:
    return "".join(f"\\x{ord(c):02x}" for c in s).encode()


class SecretFinder:
    def __init__(self, types: Sequence[str] = ()) -> None:
        packs = tuple(p for p in Policy.default().packs if p.name == PACK)
        self.classifier = Classifier(Policy(packs))
        self.types = frozenset(types)
        self.batches_skipped = 0
        """Batches the anchor gate passed over (no classifier run)."""
        self._gate = self._compile_gate()
        self._nothing_wanted = bool(self.types) and not any(
            d.type in self.types for d, _ in self.classifier.policy.detectors())

    def _compile_gate(self) -> _Gate | None:
        """The gate over the anchors of every detector whose findings are wanted (a
        wanted finding needs a candidate of its own detector); None when one has no
        anchors or Hyperscan is missing."""
        if _hs is None:
            return None
        anchors = []
        for detector, _rule in self.classifier.policy.detectors():
            if self.types and detector.type not in self.types:
                continue
            found = anchors_of(detector)
            if found is None:
                return None
            anchors.append(found)
        return _Gate(anchors) if anchors else None

    def _wanted(self, finding: Finding) -> bool:
        return not self.types or finding.type in self.types

    def _may_hold(self, text: str) -> bool:
        """False only when the classifier finds no wanted credential in ``text``."""
        if self._nothing_wanted:
            return False
        gate = self._gate
        if gate is None or len(text) > CHUNK:  # more than one classifier window
            return True
        if self.classifier.decode_escapes and unescape.needs_decoding(text):
            decoded = unescape.decode(text)
            if decoded is not None:
                text = decoded[0]
        return not text.isascii() or gate.any_in(text)

    def scan(self, lines: Sequence[str]) -> dict[int, list[Finding]]:
        """Index of each line holding a credential -> its findings (offsets in the
        batch's text: the lines joined by newlines)."""
        text = "\n".join(lines)
        if not self._may_hold(text):
            self.batches_skipped += 1
            return {}
        return self._classify(lines, text)

    def scan_exhaustive(self, lines: Sequence[str]) -> dict[int, list[Finding]]:
        """:meth:`scan` without the anchor gate: the classifier over every batch."""
        return self._classify(lines, "\n".join(lines))

    def _classify(self, lines: Sequence[str], text: str) -> dict[int, list[Finding]]:
        found: dict[int, list[Finding]] = {}
        starts: list[int] | None = None
        for f in self.classifier.iter_text(text):
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
        findings = list(self.classifier.iter_text(line))
        return redact(line, findings, "type") if findings else line
