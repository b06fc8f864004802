"""Document extraction under CPU and memory limits (a forked child with rlimits)."""

from __future__ import annotations

import pytest

from secops.config import get_settings
from secops.errors import InvalidInput
from secops.services.dlp import classify_bytes
from secops.services.sandbox import LimitExceeded, run_limited

LINE = b"name: John Smith, card 4111 1111 1111 1111, mail john@example.org\n"


def _spin() -> int:
    n = 0
    while True:
        n += 1


def test_values_and_exceptions_cross_the_pipe():
    assert run_limited(lambda: {"a": [1, 2]}, cpu_seconds=5, memory_bytes=1 << 31) == {"a": [1, 2]}
    with pytest.raises(InvalidInput, match="bad document"):
        run_limited(lambda: (_ for _ in ()).throw(InvalidInput("bad document")),
                    cpu_seconds=5, memory_bytes=1 << 31)


def test_memory_and_cpu_limits():
    with pytest.raises(LimitExceeded, match="memory limit"):
        run_limited(lambda: bytearray(1 << 30), cpu_seconds=5, memory_bytes=512 << 20)
    with pytest.raises(LimitExceeded, match="CPU limit"):
        run_limited(_spin, cpu_seconds=1, memory_bytes=1 << 31)


def test_classification_is_bounded(sqlite_env, monkeypatch):
    settings = get_settings()
    document, error = classify_bytes(LINE * 10, "people.txt", settings=settings)
    assert error is None and document is not None and document.classification == "restricted"
    assert len(document.findings) == 20  # a card and an e-mail address on each line
    tight = settings.model_copy(update={"dlp_extract_cpu_seconds": 1})
    assert classify_bytes(LINE * 700_000, "people.txt", settings=tight) == (
        None, "document not read: the CPU limit was reached")
    small = settings.model_copy(update={"dlp_extract_memory_mb": 256})
    assert classify_bytes(LINE * 300_000, "people.txt", settings=small) == (
        None, "document not read: the memory limit was reached")
