"""The native JSON lines reader (``secops/anomaly/_jsonl.pyx``) gives exactly what the
parser gives: ``LineReader.json_lines(lines)`` makes the same events (every field, its
type, ``extra`` in its order, the time to the bit) and the same counts and malformed
samples as ``LineReader.events(lines)``, on generated logs, hand-written edge cases, every
one-character edit of usual lines and seeded random mutations; and a line the reader takes
gives ``JsonLinesParser().parse(line)``. The parser (Python's ``json`` and ``datetime``)
is the oracle."""

from __future__ import annotations

import importlib.util
import json
import os
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from secops.anomaly import _native, parsers
from secops.anomaly.events import LOGIN_ACTIONS, Event
from secops.anomaly.parsers import ERROR_LEVELS, JsonLinesParser, LineReader, _iso_ts
from secops.anomaly.reading import open_log
from tests.anomaly.logsim import simulate
from tests.anomaly.mutations import mutate, one_edits

PURE = bool(os.environ.get("SECOPS_PURE_PYTHON"))
READER: Any = parsers._JSONL   # the parsers' native reader, or None
needs_reader = pytest.mark.skipif(
    READER is None, reason="the native JSON lines reader is not in use (SECOPS_PURE_PYTHON, "
                           "not built, or _jsonl.pyx changed since the build)")

ORIGIN = "portal.jsonl"
FUZZ_LINES = 200_000
FIELDS = tuple(Event.__dataclass_fields__)

# -- lines ---------------------------------------------------------------------------------

USUAL = ('{"ts": "2026-12-07T00:00:01.234Z", "event": "login", "user": "user12", '
         '"ip": "1.2.3.4", "success": true, "bytes": 123456, "service": "portal"}')
FULL = ('{"ts": "2026-12-07T05:30:01.234567+05:30", "event": "Download", "user": "alice", '
        '"ip": "2001:db8::1", "success": null, "bytes": 0, "file": "reports/7.pdf", '
        '"role": "staff", "mfa": false, "path": "/files", "status": 200, "method": "GET", '
        '"host": "app1", "service": "portal", "level": "CRIT", "message": "x", "n": -1.5e3}')
ERROR_LINE = ('{"ts": "2026-12-07T00:00:05.000Z", "event": "app_error", "service": "portal", '
              '"host": "app1", "level": "error", "message": "could not write /var/lib/x"}')

EDGE_CASES = [
    USUAL, FULL, ERROR_LINE,
    # whitespace: JSON's four characters between tokens, anything else is the parser's
    '{"ts":1,"event":"x"}', '{ "ts" : 1 , "event" : "x" }', '{\t"ts":\t1,\r\n"event":"x"\n}',
    '{"ts": 1, "event": "x"}  ', '{"ts": 1, "event": "x"}\t', '{"ts": 1, "event": "x"}\r',
    '{"ts": 1, "event": "x"}\n', '{"ts": 1, "event": "x"}\r\n', ' {"ts": 1, "event": "x"}',
    '\t{"ts": 1, "event": "x"}', '{"ts": 1, "event": "x"}\u00a0', '{"ts": 1,\u00a0"event": "x"}',
    '{"ts": 1, "event": "x"}\x0c', '{"ts": 1, "event": "x"}\u2028',
    # strings: escapes, unicode, control characters
    '{"ts": 1, "event": "a\\"b"}', '{"ts": 1, "event": "a\\\\b"}', '{"ts": 1, "event": "\\u00e9"}',
    '{"ts": 1, "event": "\\ud83d\\ude00"}', '{"ts": 1, "event": "\\ud83d"}', '{"ts": 1, "event": "\\x"}',
    '{"ts": 1, "event": "\u00e9v\u00e9nement"}', '{"ts": 1, "event": "\U0001f600"}',
    '{"ts": 1, "event": "\u0100", "user": "\U0001f600"}', '{"ts": 1, "event": "\ud800"}',
    '{"ts": 1, "event": "a\tb"}', '{"ts": 1, "event": "a\x00b"}', '{"ts": 1, "event": "a\x1fb"}',
    '{"ts": 1, "event": "a\x7fb"}', '{"ts": 1, "event": "x", "user": "a\\/b"}',
    '{"t\\u0073": 1, "event": "x"}', '{"ts": 1, "ev\u00e9nt": "x", "event": "y"}',
    '{"ts": 1, "event": "x", "\u00e9": "\u00e9"}', '{"ts": 1, "event": "x", "": ""}',
    # events: the login actions, case, empty, not a string
    *(f'{{"ts": 1, "event": "{name}"}}' for name in (
        "login", "LOGIN", "Sign_In", "signin", "logon", "ssh_login", "auth", "Authentication",
        "log in", "logins", "LOG\u0130N", "\u212auth", "view", "")),
    '{"ts": 1, "event": null}', '{"ts": 1, "event": 5}', '{"ts": 1, "event": true}',
    '{"ts": 1}', '{"event": "x"}', '{}', '{ }',
    # nested values, duplicate keys, non-objects, trailing garbage
    '{"ts": 1, "event": "x", "ctx": {"a": 1}}', '{"ts": 1, "event": "x", "tags": [1, 2]}',
    '{"ts": 1, "event": "x", "tags": []}', '{"ts": 1, "event": "x", "user": {"name": "a"}}',
    '{"ts": 1, "event": "x", "event": "y"}', '{"ts": 1, "ts": 2, "event": "x"}',
    '{"ts": 1, "event": "x", "a": 1, "a": 2}', '{"ts": 1, "event": "x", "level": "info", "level": "error"}',
    '{"ts": 1, "event": "x", "file": "a", "file": null}',
    '[{"ts": 1, "event": "x"}]', '"x"', '5', 'null', 'true', '{"ts": 1, "event": "x"}}',
    '{"ts": 1, "event": "x"} {}', '{"ts": 1, "event": "x"},', '{"ts": 1, "event": "x",}',
    '{"ts": 1, "event": "x"', '{"ts": 1, "event": "x', '{"ts": 1, "event": ', '{"ts": 1 "event": "x"}',
    '{"ts" 1, "event": "x"}', "{'ts': 1, 'event': 'x'}", '{ts: 1, event: "x"}', '{', '}', '{"',
    'not json', '', ' ', '\t', '\u00a0', '\r', '\n', '# comment',
    # numbers
    *(f'{{"ts": 1, "event": "x", "n": {number}}}' for number in (
        "0", "-0", "1", "-1", "1.0", "-0.0", "1e3", "1E3", "1e+3", "1e-3", "-1.5e-300", "1e400",
        "-1e400", "1.", ".5", "01", "-01", "00", "1.e3", "1e", "1e+", "+1", "--1", "-", "0x10",
        "1_000", "NaN", "Infinity", "-Infinity", "123456789012345678", "-123456789012345678",
        "1234567890123456789", "9" * 19, "9" * 40, "9" * 5000, "0.1", "2.5e-324", "1.7976931348623157e308")),
    *(f'{{"ts": {ts}, "event": "x"}}' for ts in (
        "0", "-0", "1", "-1", "1796601601", "1796601601.234", "1.796601601234e9", "1e3",
        "999999999999999", "9999999999999999", "99999999999999999999", "-0.0", "1e400",
        "true", "false", "null", '""', "[1]", "{}", "NaN")),
    # times
    *(f'{{"ts": "{ts}", "event": "x"}}' for ts in (
        "2026-12-07T00:00:01.234Z", "2026-12-07T00:00:01.234567Z", "2026-12-07T00:00:01Z",
        "2026-12-07T00:00:01", "2026-12-07T00:00:01.234", "2026-12-07T00:00:01+00:00",
        "2026-12-07T00:00:01.234+00:00", "2026-12-07T00:00:01-00:00", "2026-12-07T05:30:01+05:30",
        "2026-12-07T00:00:01.5-09:45", "2026-12-07T00:00:01+23:59", "2026-12-07T00:00:01-23:59",
        "2026-12-07T00:00:01+24:00", "2026-12-07T00:00:01+05:60", "2026-12-07T00:00:01+0530",
        "2026-12-07T00:00:01+05", "2026-12-07T00:00:01+05:30:15", "2026-12-07T00:00:01z",
        "2026-12-07T00:00:01ZZ", "2026-12-07T00:00:01+00:00Z", "2026-12-07T00:00:01.5Z",
        "2026-12-07T00:00:01.12Z", "2026-12-07T00:00:01.1234Z", "2026-12-07T00:00:01.12345Z",
        "2026-12-07T00:00:01.1234567Z", "2026-12-07T00:00:01,234Z", "2026-12-07T00:00:01.Z",
        "2026-12-07 00:00:01Z", "2026-12-07t00:00:01Z", "2026-12-07T00:00Z", "2026-12-07T00Z",
        "2026-12-07", "20261207T000001Z", "2026-12-07T24:00:00Z", "2026-12-07T23:60:00Z",
        "2026-12-07T23:59:60Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
        "2026-12-00T00:00:00Z", "2026-12-32T00:00:00Z", "1900-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z", "2199-12-31T23:59:59.999999Z", "2200-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z", "2026-12-07T00:00:01.234Z ", " 2026-12-07T00:00:01Z",
        "2026-12-07T00:00:0\u0661Z", "\u0662026-12-07T00:00:01Z", "2026-12-07\u00e900:00:01Z",
        "", "x", "2026-12-07T00:00:01.234+05:30", "2026-12-07T00:00:01.234-05:30")),
    # success and mfa: what the parser reads as booleans, and what it refuses
    *(f'{{"ts": 1, "event": "login", "success": {value}, "mfa": {value}}}' for value in (
        "true", "false", "null", '"yes"', '"No"', '"ok"', '"1"', '"0"', '"maybe"', '""', "1", "0",
        "2", "-1", "1.0", "0.0", "[]", "{}")),
    # the named string fields and the integers
    *(f'{{"ts": 1, "event": "x", "{name}": {value}}}' for name in ("ip", "user", "role", "path")
      for value in ('"a"', '""', "null", "5", "-0", "1.5", "true", "false", "[1]")),
    *(f'{{"ts": 1, "event": "x", "{name}": {value}}}' for name in ("status", "bytes") for value in (
        "200", "-200", "0", "-0", "null", '"200"', '"x"', "200.0", "2e2", "true", "false",
        "123456789012345678", "-123456789012345678", "999999999999999999", "9999999999999999999",
        "-9999999999999999999", "10000000000000000000", "99999999999999999999", '""', "[200]")),
    # file, level, severity, extra keys
    *(f'{{"ts": 1, "event": "x", "file": {value}}}' for value in (
        '"a.pdf"', "null", "5", "1.5", "true", "false", "9" * 25, '"\\n"', "[]")),
    *(f'{{"ts": 1, "event": "x", {levels}}}' for levels in (
        '"level": "error"', '"level": "ERROR"', '"level": "Err"', '"level": "warning"',
        '"level": null', '"level": 3', '"severity": "critical"', '"severity": "info"',
        '"level": "info", "severity": "error"', '"level": null, "severity": "error"',
        '"severity": "error", "level": "info"', '"severity": "panic", "level": 5',
        '"level": "\u0130"', '"level": "EMERG"', '"level": "fatal", "file": "f"')),
    '{"ts": 1, "event": "x", "b": 1, "a": 2, "file": "f", "c": null, "level": "err"}',
    '{"file": "f", "ts": 1, "z": true, "event": "x", "y": false, "x": -0.0}',
]

# one-character edits and random mutations draw from JSON's syntax and the forms above
ALPHABET = (' "\\{}[],:.-+eE0123456789tfnulrasZTz\t\r\n\x00\x1f\u00a0\u00e9\u0661\U0001f600')
TOKENS = ['"ts": ', '"event": ', '"success": ', '"bytes": ', '"status": ', '"file": ', '"user": ',
          '"level": "error", ', '"severity": "CRIT", ', '"mfa": true, ', '"extra": 1, ', ", ",
          ": null", ": true", ": false", ": 1e3", ": -0", ": 1.0", ': "yes"', ': "maybe"',
          '"login"', '"LOGIN"', '"+05:30"', "+05:30", "Z", ".123456", ".1", "\\\"", "\\u00e9",
          '{"a": 1}', "[1, 2]", "9" * 19, "9" * 18, "\r\n", "  "]


# -- helpers -------------------------------------------------------------------------------


def _benchmark_lines(tmp: Path) -> list[str]:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "anomaly.py"
    spec = importlib.util.spec_from_file_location("anomaly_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp, 4_000_000, 11)
    return (tmp / "portal.jsonl").read_text().splitlines()


def _simulated_lines() -> list[str]:
    return [line for _, line in simulate(77, per_family=1).portal]


def _fields(event: Event) -> list[tuple[str, Any]]:
    """Every field of an event with its type and repr (``True`` is not ``1``, ``-0.0`` is
    not ``0.0``), ``extra`` item by item in its order."""
    out: list[tuple[str, Any]] = []
    for name in FIELDS:
        value = getattr(event, name)
        if name == "extra":
            assert type(value) is dict
            out.append((name, [(k, type(v), repr(v)) for k, v in value.items()]))
        else:
            out.append((name, (type(value), repr(value))))
    return out


def _read() -> int:
    return READER.read if READER is not None else 0


def _crashes(line: str, fields: Mapping[str, str] | None) -> BaseException | None:
    """The error other than Malformed that the parser raises on a line, if any (the line
    then stops the reading: ``"bytes": 1e999`` is an OverflowError)."""
    try:
        JsonLinesParser(fields).parse(line.rstrip("\r\n"))
    except parsers.Malformed:
        return None
    except Exception as exc:   # (what the oracle raises, the block path must raise)
        return exc
    return None


def _check(lines: list[str], fields: Mapping[str, str] | None = None) -> tuple[list[Event], int]:
    """The events of ``json_lines`` after checking them, and the stats, against
    ``events`` (the oracle); returns them and how many lines the native reader read. A
    line on which the parser raises another error than Malformed must raise that same
    error in the block path; it is checked alone and left out of the block."""
    kept = []
    for line in lines:
        crash = _crashes(line, fields)
        if crash is None:
            kept.append(line)
            continue
        with pytest.raises(type(crash)) as raised:
            LineReader(JsonLinesParser(fields), origin=ORIGIN).json_lines([USUAL, line])
        assert str(raised.value) == str(crash)
    lines = kept
    want_reader = LineReader(JsonLinesParser(fields), origin=ORIGIN)
    want = list(want_reader.events(lines))
    got_reader = LineReader(JsonLinesParser(fields), origin=ORIGIN)
    before = _read()
    got = got_reader.json_lines(list(lines))
    native = _read() - before
    assert type(got) is list
    if len(got) != len(want) or any(_fields(a) != _fields(b) for a, b in zip(got, want, strict=False)):
        index = next((i for i, (a, b) in enumerate(zip(got, want, strict=False))
                      if _fields(a) != _fields(b)), min(len(got), len(want)))
        raw = (got[index] if index < len(got) else want[index]).raw
        pytest.fail(f"event {index} differs (line {raw!r}):\n"
                    f"  native {got[index] if index < len(got) else None!r}\n"
                    f"  parser {want[index] if index < len(want) else None!r}")
    assert got_reader.stats == want_reader.stats
    assert len({id(event.extra) for event in got}) == len(got)   # each its own dict
    return got, native


def _native_rows(lines: list[str]) -> list[Event | None]:
    """The native reader's answer for each line, each event checked against the parser."""
    found, left = READER.events(lines, ORIGIN)
    assert len(found) == len(lines) and left == sum(1 for e in found if e is None)
    parser = JsonLinesParser()
    for line, event in zip(lines, found, strict=True):
        if event is not None:
            (want,) = parser.parse(line)
            want.origin = ORIGIN
            assert _fields(event) == _fields(want), line
    return found


def _one_edits(line: str) -> Iterable[str]:
    return one_edits(line, ALPHABET)


def _mutate(r: random.Random, line: str) -> str:
    return mutate(r, line, ALPHABET, TOKENS, (1, 1, 1, 2, 3))


# -- the install ---------------------------------------------------------------------------


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the parser alone")
def test_the_install_builds_the_reader_and_the_parsers_use_it():
    module = _native.json_reader()
    assert module is not None, (
        "the native JSON lines reader (secops/anomaly/_jsonl.pyx) is not built or is stale: "
        "install a C compiler and the Python headers, then rerun scripts/bootstrap.sh")
    assert Path(module.__file__).suffix == ".so"
    assert isinstance(READER, module.Reader)


@pytest.mark.skipif(not PURE, reason="checks the SECOPS_PURE_PYTHON switch")
def test_the_pure_python_switch_leaves_the_parser():
    assert _native.json_reader() is None and READER is None


@needs_reader
def test_the_reader_refuses_what_it_cannot_fill():
    module = _native.json_reader()
    with pytest.raises(TypeError, match="a line must be a str, not bytes"):
        READER.events([USUAL, b"x"], ORIGIN)
    with pytest.raises(TypeError):
        READER.events((USUAL,), ORIGIN)
    with pytest.raises(TypeError):
        READER.events([USUAL], None)

    class Other:
        pass

    with pytest.raises(TypeError):
        module.Reader(Other, LOGIN_ACTIONS, ERROR_LEVELS)
    assert READER.events([], ORIGIN) == ([], 0)


# -- the fast path is taken ----------------------------------------------------------------


@needs_reader
def test_open_log_reads_usual_lines_natively(tmp_path):
    lines = _benchmark_lines(tmp_path)[:3000]
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join([*lines, "junk", "", *lines[:5]]) + "\n")
    before = _read()
    log, events = open_log(path)
    got = list(events)
    assert log.format == "jsonl"
    assert _read() - before == len(lines) + 5 == len(got)
    assert log.stats.to_dict() == {"lines": len(lines) + 6, "events": len(lines) + 5,
                                   "malformed": 1,
                                   "malformed_samples": [f"app.jsonl:{len(lines) + 1}: not JSON: junk"]}
    reader = LineReader(JsonLinesParser(), origin="app.jsonl")
    want = list(reader.events([*lines, "junk", "", *lines[:5]]))
    assert [_fields(e) for e in got] == [_fields(e) for e in want]
    # other field names, or a parser of another class: the parser reads every line
    before = _read()
    _, events = open_log(path, json_fields={"user": "account"})
    assert len(list(events)) == len(got) and _read() == before

    class Upper(JsonLinesParser):
        def parse(self, line: str) -> list[Event]:
            events = super().parse(line)
            for event in events:
                event.user = event.user and event.user.upper()
            return events

    reader = LineReader(Upper(), origin="app.jsonl")
    assert {e.user for e in reader.json_lines(lines)} == {e.user.upper() for e in want if e.user}
    assert _read() == before


# -- differential --------------------------------------------------------------------------


@needs_reader
def test_known_events():
    found = _native_rows([USUAL, FULL, ERROR_LINE, '{"ts": 1, "event": "a\\"b"}'])
    assert found[3] is None   # an escape: the parser's
    usual, full, error = found[:3]
    assert usual == Event(1796601601.234, "login", USUAL, "json", ORIGIN, True, "1.2.3.4", "user12",
                          None, "portal", None, None, None, 123456, None, None, None, {})
    assert full == Event(1796601601.234567, "Download", FULL, "json", ORIGIN, None, "2001:db8::1",
                         "alice", "app1", "portal", "GET", "/files", 200, 0, "staff", False, "error",
                         {"level": "CRIT", "message": "x", "n": -1500.0, "file": "reports/7.pdf"})
    assert list(full.extra) == ["level", "message", "n", "file"]
    assert error is not None and (error.ts, error.action, error.level, error.extra) == (
        1796601605.0, "app_error", "error",
        {"level": "error", "message": "could not write /var/lib/x"})
    logins = _native_rows([f'{{"ts": 1, "event": "{name}"}}' for name in (
        "Sign_In", "SSH_LOGIN", "log in", "view", "LOG\u0130N")])
    assert [e.action if e else None for e in logins] == ["login", "login", "log in", "view",
                                                         "LOG\u0130N"]


@needs_reader
def test_generated_and_simulated_logs(tmp_path):
    bench = _benchmark_lines(tmp_path)
    sim = _simulated_lines()
    for lines, share in ((bench, 1.0), (sim, 0.99)):
        events, native = _check(lines)
        assert len(events) == len(lines) > 1000
        assert native >= share * len(lines)
    simulated = _check(sim)[0]
    assert {e.level for e in simulated} == {None, "error"}
    assert any(e.mfa is True for e in simulated) and any(e.mfa is False for e in simulated)
    assert any("file" in e.extra for e in simulated) and any(e.role for e in simulated)
    _check(bench + sim)


@needs_reader
def test_edge_cases():
    found = _native_rows(EDGE_CASES)
    taken = sum(1 for e in found if e is not None)
    assert 100 < taken < len(EDGE_CASES) - 100
    _check(EDGE_CASES)
    for case in EDGE_CASES:   # each alone: its own counts and sample
        _check([case])
        _check([USUAL, case, USUAL])


def test_edge_cases_without_the_reader():
    """Whatever is built: the block path gives what the parser gives."""
    _check(EDGE_CASES)


@needs_reader
def test_times():
    """Times of every form the reader reads, at random instants and offsets: the native
    time is ``_iso_ts`` to the bit."""
    r = random.Random(20261207)
    lines, want = [], []
    low, high = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    span = int((high - low).total_seconds())
    for k in range(100_000):
        minutes = r.randint(-23 * 60 - 59, 23 * 60 + 59) if k % 3 else 0
        when = low + timedelta(seconds=r.randint(0, span), microseconds=r.randint(0, 999_999))
        when = when.astimezone(timezone(timedelta(minutes=minutes)))
        if not 1900 <= when.year <= 2199:
            continue
        text = when.isoformat(timespec=r.choice(("seconds", "milliseconds", "microseconds")))
        if minutes == 0:
            text = text[:-6] + r.choice(("Z", "+00:00", "-00:00", ""))
        lines.append(f'{{"ts": "{text}", "event": "x"}}')
        want.append(_iso_ts(text))
    found = _native_rows(lines)
    assert all(e is not None for e in found)
    assert [e.ts.hex() for e in found if e is not None] == [ts.hex() for ts in want]


@needs_reader
@pytest.mark.parametrize("seed", [USUAL, FULL, ERROR_LINE])
def test_every_one_character_edit(seed):
    edits = list(_one_edits(seed))
    found = _native_rows(edits)
    taken = sum(1 for e in found if e is not None)
    assert 0 < taken < len(edits)
    _check(edits)


@needs_reader
def test_fuzzed_lines(tmp_path):
    seeds = [*_benchmark_lines(tmp_path)[:300], *_simulated_lines()[:300], *EDGE_CASES]
    r = random.Random(7122026)
    native = total = 0
    block_size = 500
    for _ in range(FUZZ_LINES // block_size):
        block = [_mutate(r, r.choice(seeds)) for _ in range(block_size)]
        native += _check(block)[1]
        total += len(block)
    assert total == FUZZ_LINES
    assert FUZZ_LINES // 10 < native < FUZZ_LINES * 9 // 10


@needs_reader
def test_json_dumps_of_random_records():
    """Records as ``json.dumps`` writes them, with random values of every JSON type."""
    r = random.Random(99)
    values: list[Any] = [None, True, False, 0, -1, 7, 2**62, 10**18, 10**19, -(10**18) + 1, 0.5,
                         -0.0, 1e300, "", "x", "login", "Auth", "yes", "maybe", "\u00e9",
                         "\U0001f600", "a\"b", "2026-12-07T00:00:01Z", "2026-12-07T00:00:01.234+05:30",
                         "error", "crit", [1], {"a": 1}]
    keys = ["ts", "event", "ip", "user", "success", "bytes", "file", "role", "mfa", "path",
            "status", "method", "host", "service", "level", "severity", "message", "x"]
    lines = []
    for _ in range(20_000):
        record: dict[str, Any] = {"ts": r.choice((1796601601, "2026-12-07T00:00:01.234Z", 1.5)),
                                  "event": r.choice(("login", "view", "Sign_In"))}
        for key in r.sample(keys, r.randint(0, 8)):
            record[key] = r.choice(values)
        lines.append(json.dumps(record, ensure_ascii=r.random() < 0.5))
    events, native = _check(lines)
    assert len(lines) // 10 < native < len(lines)
