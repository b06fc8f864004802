"""The Hyperscan prefilter changes speed, never findings."""

from __future__ import annotations

import random

import pytest

from secops.dlp import Classifier, prefilter
from secops.dlp.engine import CHUNK
from tests.dlp.corpus import hard_negatives, positives

pytestmark = pytest.mark.skipif(not prefilter.AVAILABLE, reason="hyperscan is not installed")


def _noise(rng: random.Random, size: int) -> str:
    """Digit-heavy lines (timestamps, hex ids, versions, amounts) with separators."""
    lines: list[str] = []
    total = 0
    while total < size:
        line = (f"2026-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z "
                f"id={rng.getrandbits(64):016x} v{rng.randint(0, 9)}.{rng.randint(0, 99)}.1 "
                f"{rng.randint(0, 10**rng.randint(1, 19))} ({rng.randint(100, 999)}) "
                f"{rng.randint(10, 99)}-{rng.randint(0, 99999)} :{rng.getrandbits(16):x}::")
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def _document(size: int) -> str:
    rng = random.Random(5)
    samples = [text for text, _ in positives()] + hard_negatives()
    parts: list[str] = []
    total = 0
    while total < size:
        piece = rng.choice(samples) if rng.random() < 0.5 else _noise(rng, 400)
        parts.append(piece)
        total += len(piece) + 1
    return "\n".join(parts)


def test_same_findings_with_and_without_prefilter() -> None:
    text = _document(CHUNK + CHUNK // 2)  # two windows: the overlap is exercised too
    fast = list(Classifier().iter_text(text))
    slow = list(Classifier(use_prefilter=False).iter_text(text))
    assert len(fast) > 500
    assert fast == slow


def test_each_sample_alone_agrees() -> None:
    fast, slow = Classifier(), Classifier(use_prefilter=False)
    for text, _ in positives():
        assert fast.scan_text(text).findings == slow.scan_text(text).findings, text


def test_non_ascii_windows_take_the_re_path() -> None:
    text = "Zoë's card 4111 1111 1111 1111, ssn 536-22-8874 — café"
    assert [f.type for f in Classifier().scan_text(text).findings] == \
        [f.type for f in Classifier(use_prefilter=False).scan_text(text).findings]


def test_numbers_before_a_dot_agree() -> None:
    """A dot after a number ends it only before something other than a digit: the
    anchors of numbers look two characters to the right."""
    rng = random.Random(9)
    shapes = ["415-555-2671", "536-22-8874", "4111 1111 1111 1111", "4111111111111111",
              "030 12345678", "0176/12345678", "01 23 45 67 89", "03069990824", "1234 567890",
              "81.2.69.160", "415.555.2671", "123.45.6789"]
    tails = [".", ".5", ". ", ".\n", ".x", "..", ".-", "", " ", "-", ",", ".55.1"]
    heads = ["", " ", "call ", "ssn ", "card ", "tel: ", "\n", "x", "."]
    lines = [rng.choice(heads) + rng.choice(shapes) + rng.choice(tails)
             for _ in range(20000)]
    text = "".join(line + rng.choice((" ", "\n", "")) for line in lines)
    fast = list(Classifier().iter_text(text))
    slow = list(Classifier(use_prefilter=False).iter_text(text))
    assert len(fast) > 5000
    assert fast == slow
