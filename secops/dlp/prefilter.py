"""Optional Hyperscan prefilter: one pass over a window finds where detectors may match.

Python's ``re`` restarts its search at every candidate position, and the digit-led
detectors have a candidate at every digit (a fifth of a typical log file). Hyperscan
(Intel's multi-pattern automaton, package ``hyperscan``) scans a megabyte for all
anchors at once in a few milliseconds and reports where each one starts and ends; the
engine then runs each detector's exact ``re`` pattern only inside its anchor's matches,
and the validators decide as they do without it. Findings are identical with and without the prefilter
(``tests/dlp`` checks it); only the time differs.

Two kinds of anchors are compiled into one database:

* a detector's ``anchor``: a Hyperscan expression matching a *superset* of the
  detector's pattern including one boundary character on the left and up to two on
  the right (look-arounds are not available in Hyperscan; a number's right boundary is
  a dot only before a non-digit), so every real match ends at most two characters
  before a reported end and starts at or after the leftmost start reported for that
  end;
* the ``near`` words of anchored detectors, case-insensitive.

Alongside them, present or not: the detectors' literals and hints, and their ``seed``
expressions (a window without a match of a detector's seed holds none of its matches).

The engine compiles a second, words-only database of the detectors' context words (each
only where it starts a word, as the context search wants it) and scans a window with it
when the window holds many candidates (a dense export): then a candidate's context is a
look-up instead of two regex searches.

Hyperscan scans bytes, so the prefilter is used only for ASCII windows (where byte
and character offsets coincide and ASCII classes equal ``re``'s Unicode ones); other
windows take the pure ``re`` path. Without the package everything takes that path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_hs: Any
try:  # optional: a C extension with wheels for the common platforms
    import hyperscan as _hs
except ImportError:  # pragma: no cover - depends on the environment
    _hs = None

AVAILABLE = _hs is not None


class Prefilter:
    """A compiled set of anchors and words; :meth:`scan` gives the ends per key."""

    def __init__(
        self, anchors: dict[str, str], words: Iterable[str], literals: Iterable[str] = (),
        *, word_start: bool = False, seeds: Iterable[str] = (),
    ) -> None:
        if _hs is None:  # pragma: no cover - guarded by callers
            raise RuntimeError("hyperscan is not installed")
        anchor_keys = sorted(anchors)
        # a word with upper-case letters never occurs in lower-cased text: leave it out
        words = sorted({w for w in words if w and w.isascii() and w == w.lower()})
        lits = sorted({lit for lit in literals if lit and lit.isascii()})
        seed_exprs = sorted(set(seeds))
        exprs = [anchors[k] for k in anchor_keys]
        start = _WORD_START if word_start else ""
        exprs += [start + _escape(w) for w in words] + [_escape(lit) for lit in lits]
        exprs += seed_exprs
        flags = [_hs.HS_FLAG_MULTILINE | _hs.HS_FLAG_SOM_LEFTMOST] * len(anchor_keys)
        flags += [_hs.HS_FLAG_CASELESS] * len(words)
        flags += [_hs.HS_FLAG_SINGLEMATCH] * (len(lits) + len(seed_exprs))
        self._keys = (*anchor_keys, *("word:" + w for w in words), *("lit:" + x for x in lits),
                      *("seed:" + x for x in seed_exprs))
        self._anchors = len(anchor_keys)
        self._db = _hs.Database()
        self._db.compile(expressions=[e.encode() for e in exprs], ids=list(range(len(exprs))),
                         elements=len(exprs), flags=flags)
        self._local = threading.local()

    def scan(self, window: str) -> dict[str, list[int]]:
        """End offsets of every anchor and word in an ASCII ``window``, by key.

        Anchor keys are the keys given; words are ``"word:" + word`` (case-insensitive,
        every occurrence; with ``word_start``, only those not after an ASCII letter or
        digit), literals ``"lit:" + literal`` and seeds ``"seed:" + expression``
        (present or not: one end).
        An anchor's key also has ``"from:" + key``: for each end, where the leftmost
        match that ends there starts (Hyperscan's leftmost start of match).
        """
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:  # one scratch space per thread: scans are then thread-safe
            scratch = self._local.scratch = _hs.Scratch(self._db)
        ends: list[list[int]] = [[] for _ in self._keys]
        starts: list[list[int]] = [[] for _ in range(self._anchors)]
        anchors = self._anchors

        def on_match(id_: int, from_: int, to: int, _flags: int, _ctx: Any) -> None:
            ends[id_].append(to)
            if id_ < anchors:
                starts[id_].append(from_)

        self._db.scan(window.encode("ascii"), match_event_handler=on_match, scratch=scratch)
        found = {key: at for key, at in zip(self._keys, ends, strict=True) if at}
        found.update(("from:" + key, at) for key, at in zip(self._keys, starts, strict=False)
                     if at)
        return found


def _escape(word: str) -> str:
    return "".join(c if c.isalnum() else f"\\x{ord(c):02x}" for c in word)


_WORD_START = "(?:^|[^0-9a-z])"
"""Before a word that starts a word: the start of the data or a character other than an
ASCII letter or digit (case-insensitive, like the words)."""


@lru_cache(maxsize=16)
def compiled(
    anchors: tuple[tuple[str, str], ...], words: tuple[str, ...], literals: tuple[str, ...],
    word_start: bool = False, seeds: tuple[str, ...] = (),
) -> Prefilter | None:
    """A cached :class:`Prefilter` (compiling takes about 0.2 s), or None without Hyperscan."""
    if _hs is None:
        return None
    return Prefilter(dict(anchors), words, literals, word_start=word_start, seeds=seeds)
