"""secops.scanning.search.find gives exactly what bytes.find gives."""

from __future__ import annotations

import random

import pytest

from secops.scanning import search

SIGNATURE = b"7z\xbc\xaf\x27\x1c"


def test_native_search_is_in_use_here() -> None:
    # On this platform (glibc) the fast path is taken; the rest would pass without it.
    assert search._memmem is not None


@pytest.mark.parametrize("seed", range(5))
def test_same_offsets_as_bytes_find(seed: int) -> None:
    rng = random.Random(seed)
    size = search.NATIVE_MIN_BYTES * 4
    data = bytearray(rng.randbytes(size))
    spots = sorted(rng.sample(range(size - len(SIGNATURE)), 3)) + [0, size - len(SIGNATURE)]
    for spot in spots:
        data[spot:spot + len(SIGNATURE)] = SIGNATURE
    blob = bytes(data)
    starts = [0, 1, size - search.NATIVE_MIN_BYTES, size - search.NATIVE_MIN_BYTES + 1,
              size - len(SIGNATURE), size - 1, size, size + 10]
    starts += [spot + delta for spot in spots for delta in (-1, 0, 1)]
    for start in starts:
        for needle in (SIGNATURE, SIGNATURE[:2], SIGNATURE[1:], b"\xbc", b"absent needle!"):
            assert search.find(blob, needle, start) == blob.find(needle, start), (start, needle)


def test_small_and_other_inputs_fall_back_to_bytes_find() -> None:
    small = b"abc" + SIGNATURE
    assert search.find(small, SIGNATURE, 1) == 3
    big = bytes(search.NATIVE_MIN_BYTES) + SIGNATURE
    assert search.find(bytearray(big), SIGNATURE) == search.NATIVE_MIN_BYTES
    assert search.find(memoryview(big).tobytes(), SIGNATURE, 5) == search.NATIVE_MIN_BYTES
    assert search.find(big, b"", 7) == 7  # as bytes.find: the empty needle is at start
    assert search.find(big, SIGNATURE, -8) == big.find(SIGNATURE, -8)
