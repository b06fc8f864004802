"""Line mutations for the fuzz tests of the native readers (test_scan, test_jsonl)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence


def one_edits(line: str, alphabet: str) -> Iterable[str]:
    """Every deletion, replacement and insertion of one character of ``alphabet``."""
    for i in range(len(line) + 1):
        if i < len(line):
            yield line[:i] + line[i + 1:]
        for c in alphabet:
            if i < len(line) and c != line[i]:
                yield line[:i] + c + line[i + 1:]
            yield line[:i] + c + line[i:]


def mutate(r: random.Random, line: str, alphabet: str, tokens: Sequence[str],
           rounds: Sequence[int]) -> str:
    """``line`` after ``r.choice(rounds)`` random edits: a character deleted, replaced or
    inserted, a token inserted, the line cut, a run of digits of any length, a piece
    doubled."""
    for _ in range(r.choice(rounds)):
        op = r.random()
        i = r.randint(0, len(line))
        if op < 0.25:
            line = line[:i] + line[i + 1:]
        elif op < 0.5:
            line = line[:i] + r.choice(alphabet) + line[i + 1:]
        elif op < 0.7:
            line = line[:i] + r.choice(alphabet) + line[i:]
        elif op < 0.85:
            line = line[:i] + r.choice(tokens) + line[i:]
        elif op < 0.9:
            line = line[:i]
        elif op < 0.95:   # a run of digits of any length where one starts
            j = i
            while j < len(line) and line[j].isdigit():
                j += 1
            line = line[:i] + "7" * r.randint(1, 25) + line[j:]
        else:
            j = r.randint(i, min(len(line), i + 12))
            line = line[:i] + line[i:j] * 2 + line[j:]
    return line
