"""A load-time check of custom detector patterns for catastrophic backtracking.

Python's ``re`` backtracks, so a pattern such as ``(a+)+$`` or ``(\\w|\\d)*x`` takes
time exponential in the length of a near-miss input: one crafted line in a scanned
document would stall a worker. Custom detectors come from policy files, so their
patterns are checked when the policy loads and refused with the reason.

The check reads the parsed pattern (``re._parser``) and refuses the two shapes behind
exponential backtracking:

* **nested repetition**: a repeated group (``+``, ``*``, ``{m,n}`` with ``n > 1``)
  containing an unbounded repetition (more than ``BOUND`` times) that is not
  *separated*: the next mandatory item in the group must not be able to start with a
  character the inner repetition consumes (``(\\w+\\s)+`` is fine, ``(\\w+\\d?)+`` is not);
* **ambiguous repetition**: alternatives that can start with the same character inside
  an unbounded repetition (``(a.|ab)*``), or an optional part of the repeated body that
  can match what the body starts with (``(aa?)+``, ``(a|aa)+``; Python's parser turns
  the latter into ``(a(?:|a))+``).

Possessive quantifiers and atomic groups never backtrack into themselves and are
accepted. The check is conservative: a refused pattern can always be rewritten
(character classes instead of alternations, bounded counts, atomic groups).
"""

from __future__ import annotations

import re
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

BOUND = 50
_ALL = frozenset(range(256))
_CATEGORIES = {
    sre.CATEGORY_DIGIT: re.compile(r"\d"), sre.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    sre.CATEGORY_WORD: re.compile(r"\w"), sre.CATEGORY_NOT_WORD: re.compile(r"\W"),
    sre.CATEGORY_SPACE: re.compile(r"\s"), sre.CATEGORY_NOT_SPACE: re.compile(r"\S"),
}
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)


class CatastrophicPattern(ValueError):
    """The pattern can backtrack exponentially; the message says where."""


def check(pattern: str, flags: int = 0) -> None:
    """Raise :class:`CatastrophicPattern` for the shapes in the module docstring."""
    tree = _parser.parse(pattern, flags)
    _walk(list(tree), outer=False, ignore_case=bool(flags & re.IGNORECASE))


def _walk(items: list[Any], *, outer: bool, ignore_case: bool) -> None:
    for index, (op, av) in enumerate(items):
        if op in _REPEATS:
            low, high, body = av
            body = list(body)
            unbounded = high == sre.MAXREPEAT or high > BOUND
            if outer and unbounded and _can_consume(body) and \
                    not _separated(items, index, _chars(body, ignore_case), ignore_case):
                raise CatastrophicPattern("a repetition inside a repeated group "
                                          "(nested quantifiers such as (a+)+)")
            if unbounded:
                _check_branches(body, ignore_case)
                _check_optional(body, _first(body, ignore_case), ignore_case)
            _walk(body, outer=outer or high > 1, ignore_case=ignore_case)
        elif op == sre.SUBPATTERN:
            _walk(list(av[3]), outer=outer, ignore_case=ignore_case)
        elif op == sre.BRANCH:
            for alternative in av[1]:
                _walk(list(alternative), outer=outer, ignore_case=ignore_case)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            _walk(list(av[1]), outer=False, ignore_case=ignore_case)
        # POSSESSIVE_REPEAT and ATOMIC_GROUP do not backtrack into themselves: skipped


def _check_branches(body: list[Any], ignore_case: bool) -> None:
    """Alternatives in the body of an unbounded repetition must start differently."""
    for op, av in body:
        if op == sre.SUBPATTERN:
            _check_branches(list(av[3]), ignore_case)
        elif op == sre.BRANCH:
            seen: set[int] = set()
            for alternative in av[1]:
                first = _first(list(alternative), ignore_case)
                if first & seen:
                    raise CatastrophicPattern("alternatives that can start alike inside a "
                                              "repetition (such as (a.|ab)*)")
                seen |= first


def _check_optional(body: list[Any], first: frozenset[int], ignore_case: bool) -> None:
    """An optional part of a repeated body that can consume what the body starts with
    (``(aa?)+``, ``(a|aa)+``, which the parser turns into ``(a(?:|a))+``) lets one input
    split into repetitions in exponentially many ways."""
    for op, av in body:
        if op == sre.SUBPATTERN:
            _check_optional(list(av[3]), first, ignore_case)
            continue
        optional = (op in _REPEATS and av[0] == 0) or (
            op == sre.BRANCH and any(_nullable(list(alt)) for alt in av[1]))
        if optional and _chars([(op, av)], ignore_case) & first:
            raise CatastrophicPattern("an optional part of a repeated group that can match "
                                      "what the group starts with (such as (aa?)+ or "
                                      "(a|aa)+)")


def _separated(items: list[Any], index: int, consumed: frozenset[int],
               ignore_case: bool) -> bool:
    """Whether the next mandatory item after ``items[index]`` cannot start with a
    character of ``consumed`` (so the repetition's end is decided by one character)."""
    rest = items[index + 1:]
    if not rest:
        return False
    for i in range(len(rest)):
        if not _nullable(rest[i:i + 1]):
            return not (_first(rest[i:], ignore_case) & consumed)
        if _first(rest[i:i + 1], ignore_case) & consumed:
            return False
    return False


def _can_consume(body: list[Any]) -> bool:
    return not all(op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT) for op, _ in body)


def _nullable(items: list[Any]) -> bool:
    for op, av in items:
        if op in _REPEATS or op == sre.POSSESSIVE_REPEAT:
            if av[0] > 0 and not _nullable(list(av[2])):
                return False
        elif op == sre.SUBPATTERN:
            if not _nullable(list(av[3])):
                return False
        elif op == sre.BRANCH:
            if not any(_nullable(list(alt)) for alt in av[1]):
                return False
        elif op == sre.ATOMIC_GROUP:
            if not _nullable(list(av)):
                return False
        elif op not in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            return False
    return True


def _first(items: list[Any], ignore_case: bool) -> frozenset[int]:
    """Characters (code points below 256) a match of ``items`` can start with."""
    result: set[int] = set()
    for op, av in items:
        if op in _REPEATS or op == sre.POSSESSIVE_REPEAT:
            result |= _first(list(av[2]), ignore_case)
        elif op == sre.SUBPATTERN:
            result |= _first(list(av[3]), ignore_case)
        elif op == sre.ATOMIC_GROUP:
            result |= _first(list(av), ignore_case)
        elif op == sre.BRANCH:
            for alternative in av[1]:
                result |= _first(list(alternative), ignore_case)
        elif op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
            continue
        else:
            result |= _chars([(op, av)], ignore_case)
        if not _nullable([(op, av)]):
            break
    return frozenset(result)


def _chars(items: list[Any], ignore_case: bool) -> frozenset[int]:
    """Characters any single-character item in ``items`` can consume (an over-estimate
    for anything longer: every character of every item)."""
    result: set[int] = set()
    for op, av in items:
        if op == sre.LITERAL:
            result |= _case({av}, ignore_case)
        elif op == sre.NOT_LITERAL:
            result |= _ALL - _case({av}, ignore_case)
        elif op == sre.ANY:
            result |= _ALL
        elif op == sre.IN:
            result |= _class(av, ignore_case)
        elif op in _REPEATS or op == sre.POSSESSIVE_REPEAT:
            result |= _chars(list(av[2]), ignore_case)
        elif op == sre.SUBPATTERN:
            result |= _chars(list(av[3]), ignore_case)
        elif op == sre.ATOMIC_GROUP:
            result |= _chars(list(av), ignore_case)
        elif op == sre.BRANCH:
            for alternative in av[1]:
                result |= _chars(list(alternative), ignore_case)
        elif op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            result |= _ALL
    return frozenset(result)


def _class(items: list[Any], ignore_case: bool) -> set[int]:
    chars: set[int] = set()
    negate = False
    for op, av in items:
        if op == sre.NEGATE:
            negate = True
        elif op == sre.LITERAL:
            chars |= _case({av}, ignore_case)
        elif op == sre.RANGE:
            chars |= _case(set(range(av[0], min(av[1], 255) + 1)), ignore_case)
        elif op == sre.CATEGORY and av in _CATEGORIES:
            chars |= {c for c in _ALL if _CATEGORIES[av].match(chr(c))}
    return set(_ALL - chars) if negate else chars


def _case(chars: set[int], ignore_case: bool) -> set[int]:
    if not ignore_case:
        return chars
    out = set(chars)
    for c in chars:
        if c < 256:
            out |= {ord(x) for x in (chr(c).lower(), chr(c).upper()) if ord(x) < 256}
    return out
