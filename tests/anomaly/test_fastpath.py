"""The shortcuts of the local engine give exactly what the plain algorithms give."""

from __future__ import annotations

import io
import random

from secops.anomaly.detector import Conditions
from secops.anomaly.reading import lines
from secops.anomaly.store import MemoryStore, step_tally


def test_block_reading_splits_lines_like_the_stream():
    text = "a\nb\r\nc\rd\n\n  \nlast-without-end"
    stream = io.StringIO(text, newline="")
    expected = [ln.rstrip("\r\n") for ln in io.StringIO(text, newline="")]
    for block in (1, 2, 3, 5, 1 << 20):
        stream.seek(0)
        assert list(lines(stream, block)) == expected
    assert expected == ["a", "b", "c", "d", "", "  ", "last-without-end"]


def test_lazy_conditional_window_fires_as_the_plain_one():
    conditions = Conditions([("distinct_user", ">=", 4), ("failures", ">=", 5),
                             ("success_rate", "<=", 0.3)])
    assert conditions.need == 5
    r = random.Random(5)
    store, plain = MemoryStore(), {}
    fired_lazy, fired_plain = [], []
    ts = 0.0
    for i in range(4000):
        ts += r.expovariate(1 / 40)
        key = f"k{r.randrange(6)}"
        success = r.random() < 0.2
        values = {"user": f"u{r.randrange(8)}"}
        got = store.tally(key, ts, f"line {i}", 600, success, values, {"user": 10_000}, 3,
                          conditions)
        plain[key], want = step_tally(plain.get(key), ts, f"line {i}", 600, success, values,
                                      {"user": 10_000}, 3, conditions)
        fired_lazy.append(got)
        fired_plain.append(want)
    assert fired_lazy == fired_plain
    assert sum(f is not None for f in fired_plain) > 10   # the windows did fire
