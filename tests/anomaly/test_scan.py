"""The native scanner (``secops/anomaly/_scan.pyx``) gives exactly what the block
expressions give: ``light_fields(lines) == _block_matches(_LIGHT_LINE, lines)`` and
``sshd_fields(lines) == _block_matches(_SSHD_LINE, lines)``, line for line, on generated
logs, hand-written edge cases, every one-character edit of usual lines and seeded random
mutations. The expressions (Python's ``re``) are the oracle."""

from __future__ import annotations

import importlib.util
import os
import random
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from secops.anomaly import _native, parsers
from secops.anomaly.parsers import _LIGHT_LINE, _SSHD_LINE, _block_matches
from tests.anomaly.logsim import simulate
from tests.anomaly.mutations import mutate, one_edits

PURE = bool(os.environ.get("SECOPS_PURE_PYTHON"))
SCAN: Any = _native.scanner()   # the module, or None
needs_scan = pytest.mark.skipif(
    SCAN is None, reason="the native scanner is not in use (SECOPS_PURE_PYTHON, not built, "
                         "or _scan.pyx changed since the build)")

FUZZ_LINES = 200_000   # per expression

# -- lines ---------------------------------------------------------------------------------

ACCESS = '203.0.113.9 - - [07/Dec/2026:10:00:01 +0000] "GET /a/b?q=1 HTTP/1.1" 200 5120 "-" "x"'
FAILED = "Dec  7 10:00:01 web1 sshd[4242]: Failed password for root from 198.51.100.4 port 2222 ssh2"
INVALID = ("Dec 17 10:00:01 web1 sshd[4242]: Failed password for invalid user admin from "
           "198.51.100.4 port 2222 ssh2")
ACCEPTED = "Dec  7 10:00:01 web1 sshd[7]: Accepted publickey for alice from 2001:db8::1 port 22 ssh2"
OTHER = "Dec  7 10:00:01 web1 sshd[7]: Connection closed by 198.51.100.4 port 22 [preauth]"
HEAD = "Dec  7 10:00:01 web1 sshd[7]: "
TIME = "07/Dec/2026:10:00:01 +0000"

LIGHT_CASES = [
    ACCESS,
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 -',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 -5',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 -x',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 --',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 ',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 20 5',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 2000 5',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 2a0 5',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" \u0662\u0660\u0660 5',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 \u0665',
    *(f'1.2.3.4 - - [{TIME}] "GET / HTTP/1.1" 200 {"9" * k}{tail}'
      for k in (1, 18, 19, 20, 21, 40) for tail in ("", " x", "x", "\r", ".5")),
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a?b?c=d&e=\'f\' HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a? HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a?q="x" HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a?q=\\x HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a"b HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a\\b HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a b HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a\tb HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a\rb HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /caf\u00e9/\U0001f600 HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a HTTP/1\\.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a HTTP/1.1 x" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a " 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a HTTP/1.1"200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /a HTTP/1.1"  200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET a HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "get / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "G3T / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] " / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET  / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "\u00c9T / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000]  "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000]"GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [a]b] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [a "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [a" "b] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [\u00e9 \U0001f600] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - -  [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4  - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4\t- - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4\u00a0- - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 -\x1c- x [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    ' 1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    'a]" b[ c" [x] "GET / HTTP/1.1" 200 1',
    '\u00e9 \u00e9 \U0001f600 [x] "GET /\U0001f600 \u00e9" 404 12 \u00e9',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1\r',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1\r\n',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1\n',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1\nmore',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200\n1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /\n HTTP/1.1" 200 1',
    '\n1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 1',
    '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "GET /' + "a" * 100_000 + ' HTTP/1.1" 200 1',
    '1.2.3.4 - - [' + "x" * 50_000 + '] "GET / HTTP/1.1" 200 1',
    "x" * 100_000,
    "", " ", "\r", "\t", "\u2028", "a b c [", "a b c [x", "a b c [x]", 'a b c [x] "', 'a b c [x] "G',
    'a b c [x] "GET', 'a b c [x] "GET ', 'a b c [x] "GET /', 'a b c [x] "GET / H', 'a b c [x] "GET / H"',
    'a b c [x] "GET / H" ', 'a b c [x] "GET / H" 2', 'a b c [x] "GET / H" 200', 'a b c [x] "GET / H" 200 ',
    'a b c [x] "GET / H" 200 1',
]

SSHD_CASES = [
    FAILED, INVALID, ACCEPTED, OTHER,
    *(HEAD + f"Failed {how} for root from 1.2.3.4 port 22 ssh2"
      for how in ("password", "publickey", "keyboard-interactive/pam", "none", "hostbased",
                  "gssapi", "Password", "passwordx", "keyboard-interactive", "")),
    HEAD + "Failed password for invalid user from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid user  from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid user x from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid user invalid user x from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid userx from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid user from from 1.2.3.4 port 22",
    HEAD + "Failed password for invalid from 1.2.3.4 port 22",
    HEAD + "Failed password for a from b from 1.2.3.4 port 22 from 5.6.7.8 port 9",
    HEAD + "Failed password for a from b port 1 from 1.2.3.4 port 22",
    HEAD + "Failed password for a from 1.2.3.4 port x from 5.6.7.8 port 9",
    HEAD + "Failed password for a from 1.2.3.4 portx from 5.6.7.8 port 9",
    HEAD + "Failed password for a from 1.2.3.4 port \u0663",
    HEAD + "Failed password for a from 1.2.3.4 port ",
    HEAD + "Failed password for a from 1.2.3.4 port",
    HEAD + "Failed password for a from 1.2.3.4",
    HEAD + "Failed password for a from  port 22",
    HEAD + "Failed password for  from 1.2.3.4 port 22",
    HEAD + "Failed password for from 1.2.3.4 port 22",
    HEAD + "Failed password for \u00e9 \U0001f600 \t x from ABCDEF:abcdef:0123:: port 22",
    HEAD + "Failed password for x from ::ffff:192.0.2.1 port 22",
    HEAD + "Failed password for x from fe80::1%eth0 port 22",
    HEAD + "Failed password for x from g::1 port 22",
    HEAD + "Failed password for x from 1.2.3.4  port 22",
    HEAD + "Failed password for x\rfrom 1.2.3.4 port 22",
    HEAD + "Failed password for x from 1.2.3.4 port 22\r",
    HEAD + "Failed password  for x from 1.2.3.4 port 22",
    HEAD + "Failed  password for x from 1.2.3.4 port 22",
    HEAD + "Failed password for x " + "from " * 2000 + "port 22",
    HEAD + "Failed password for " + " from 1" * 3000 + " port 2",
    HEAD + "Failed", HEAD + "Failed ", HEAD + "Failedx", HEAD + "FailedFailed",
    HEAD + "Accepted password for bob from 1.2.3.4 port 22",
    HEAD + "Accepted keyboard-interactive/pam for bob from 1.2.3.4 port 22 ssh2",
    HEAD + "Accepted \u00e9 for b\u00f6b from ::1 port \u0661",
    HEAD + "Accepted password for bob from 1.2.3.4 port x",
    HEAD + "Accepted password for bob  from 1.2.3.4 port 22",
    HEAD + "Accepted password  for bob from 1.2.3.4 port 22",
    HEAD + "Accepted  password for bob from 1.2.3.4 port 22",
    HEAD + "Accepted password for bob from 1.2.3.4 port 22 from 5.6.7.8 port 1",
    HEAD + "Accepted password for bob x from 1.2.3.4 port 22",
    HEAD + "Accepted password for from 1.2.3.4 port 22",
    HEAD + "Accepted  for bob from 1.2.3.4 port 22",
    HEAD + "Accepted password for  from 1.2.3.4 port 22",
    HEAD + "Accepted password for bob from  port 22",
    HEAD + "Accepted password for bob\tfrom 1.2.3.4 port 22",
    HEAD + "Accepted", HEAD + "Accepted ", HEAD + "Acceptedx", HEAD + "accepted x",
    HEAD + "Invalid user bob from 1.2.3.4 port 22", HEAD + "Invalid", HEAD + "Invalidx",
    HEAD + "invalid user bob",
    HEAD + "message repeated 3 times: [ Failed password for root from 1.2.3.4 port 22 ssh2]",
    HEAD + "message repeated", HEAD + "message repeated\tx", HEAD + "message repeatedx",
    HEAD + "message  repeated 2 times", HEAD + "Message repeated 2 times",
    HEAD, HEAD[:-1], HEAD[:-2], HEAD + " Failed password for a from 1.2.3.4 port 2",
    HEAD + "\u00e9\U0001f600", HEAD + "\r",
    "Dec  7 10:00:01 web1 sshd[7]:Failed password for a from 1.2.3.4 port 2",
    "Dec 7 10:00:01 h sshd[1]: x", "Dec  17 10:00:01 h sshd[1]: x", "Dec   7 10:00:01 h sshd[1]: x",
    "Dec 177 10:00:01 h sshd[1]: x", "Dec  7  10:00:01 h sshd[1]: x", "Dec 07 10:00:01 h sshd[1]: x",
    "Dec \u0663 10:00:01 h sshd[\u0661\u0662]: x", "Dec 7 \u0661\u0660:00:0\U0001d7d8 h sshd[1]: x",
    "Dec x 10:00:01 h sshd[1]: x", "Dec  10:00:01 h sshd[1]: x", "Dec7 10:00:01 h sshd[1]: x",
    "DEC 7 10:00:01 h sshd[1]: x", "dec 7 10:00:01 h sshd[1]: x", "De 7 10:00:01 h sshd[1]: x",
    "D\u00e9c 7 10:00:01 h sshd[1]: x", "D{c 7 10:00:01 h sshd[1]: x", "De` 7 10:00:01 h sshd[1]: x",
    "@ec 7 10:00:01 h sshd[1]: x", "[ec 7 10:00:01 h sshd[1]: x", "Dec\t7 10:00:01 h sshd[1]: x",
    "Dec 7 1:00:01 h sshd[1]: x", "Dec 7 10:00:1 h sshd[1]: x", "Dec 7 10-00-01 h sshd[1]: x",
    "Dec 7 10:00:01  h sshd[1]: x", "Dec 7 10:00:01 h  sshd[1]: x", "Dec 7 10:00:01 h sshd[]: x",
    "Dec 7 10:00:01 h sshd[x]: x", "Dec 7 10:00:01 h sshd[1] x", "Dec 7 10:00:01 h sshd[1]:",
    "Dec 7 10:00:01 h sshd[1]: ", "Dec 7 10:00:01 h sudo[1]: x", "Dec 7 10:00:01 h sshd(1): x",
    "Dec 7 10:00:01 sshd[1]: x", "Dec 7 10:00:01 h\u00a0x sshd[1]: x",
    "Dec 7 10:00:01 h\u00e9\U0001f600 sshd[1]: x", "Dec 7 10:00:01 h sshd[1]: x\nDec",
    "Dec 7 10:00:01 h sshd[1]: Failed password for a from 1.2.3.4 port\n22",
    "Dec 7 10:00:01 h sshd[1]: Failed password for a\nfrom 1.2.3.4 port 22",
    "Dec 7 10:00:01 h sshd[1]: Failed password for a from 1.2.3.4 port 2\n2",
    "Dec 7 10:00:01 h sshd[1\n]: x", "\nDec 7 10:00:01 h sshd[1]: x",
    "Dec 7 10:00:01 " + "h" * 100_000 + " sshd[1]: x",
    "", " ", "\r", "D", "De", "Dec", "Dec ", "Dec 7", "Dec 7 ", "Dec 7 10:00:0", "Dec 7 10:00:01",
    "Dec 7 10:00:01 ", "Dec 7 10:00:01 h", "Dec 7 10:00:01 h sshd[", "Dec 7 10:00:01 h sshd[1",
    "Dec 7 10:00:01 h sshd[1]", "Dec 7 10:00:01 h sshd[1]: Failed password for a from 1.2.3.4 port 2",
]

# one-character edits and random mutations draw from the characters the expressions test
# (with the neighbours of each range: @ [ ` { / : ; g G)
ALPHABET = (' "\\[]?:.-/\n\r\t0123456789aAzZGFfEPp@`{;g\u00a0\u2028\x1c\x85\u3000'
            '\u00e9\u0663\U0001d7d8\U0001f600')
TOKENS = [" from ", " port ", " for ", "invalid user ", "Failed ", "Accepted ", "Invalid",
          "message repeated ", " sshd[", "]: ", '" ', ' "', " HTTP/1.1", "?", "9" * 19, "9" * 20,
          " 200 ", " - ", "::", "password", "\r\n"]

# -- helpers -------------------------------------------------------------------------------


def _benchmark_lines(tmp: Path) -> tuple[list[str], list[str]]:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "anomaly.py"
    spec = importlib.util.spec_from_file_location("anomaly_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(tmp, 400_000, 11)
    return ((tmp / "access.log").read_text().splitlines(),
            (tmp / "auth.log").read_text().splitlines())


def _simulated_lines() -> tuple[list[str], list[str]]:
    day = simulate(77, per_family=1)
    return [line for _, line in day.access], [line for _, line in day.auth]


def _check(native: Callable[[list[str]], list[tuple[str, ...]]], expression: re.Pattern[str],
           lines: list[str]) -> list[tuple[str, ...]]:
    """The scanner's rows for a block, after checking them against the expression's."""
    want = _block_matches(expression, lines)
    got = native(lines)
    assert type(got) is list and len(got) == len(lines) == len(want)
    if got != want:
        index = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        pytest.fail(f"line {index} of the block differs:\n  line   {lines[index]!r}\n"
                    f"  native {got[index]!r}\n  re     {want[index]!r}")
    assert all(type(row) is tuple and all(type(v) is str for v in row) for row in got)
    return got


def _one_edits(line: str) -> Iterable[str]:
    return one_edits(line, ALPHABET)


def _mutate(r: random.Random, line: str) -> str:
    return mutate(r, line, ALPHABET, TOKENS, (1, 1, 2, 3, 5))


def _fuzz(native: Callable[[list[str]], list[tuple[str, ...]]], expression: re.Pattern[str],
          seeds: list[str], seed: int) -> tuple[int, int]:
    """FUZZ_LINES mutated lines in blocks; returns (lines of the usual shape, others)."""
    r = random.Random(seed)
    usual = other = 0
    block_size = 500
    for number in range(FUZZ_LINES // block_size):
        block = [_mutate(r, r.choice(seeds)) for _ in range(block_size)]
        if number % 2:   # no line end inside a line: the block's one findall
            block = [line.replace("\n", "") for line in block]
        rows = _check(native, expression, block)
        hits = sum(1 for row in rows if row[0])
        usual += hits
        other += len(rows) - hits
    return usual, other


# -- the install ---------------------------------------------------------------------------


@pytest.mark.skipif(PURE, reason="SECOPS_PURE_PYTHON asks for the regular expressions")
def test_the_install_builds_the_scanner_and_the_parsers_use_it():
    assert SCAN is not None, (
        "the native scanner (secops/anomaly/_scan.pyx) is not built or is stale: install a C "
        "compiler and the Python headers, then rerun scripts/bootstrap.sh (pip install -e .)")
    assert Path(SCAN.__file__).suffix == ".so"
    assert parsers._SCAN is SCAN


@pytest.mark.skipif(not PURE, reason="checks the SECOPS_PURE_PYTHON switch")
def test_the_pure_python_switch_leaves_the_regular_expressions():
    assert SCAN is None and parsers._SCAN is None


# -- differential --------------------------------------------------------------------------


@needs_scan
def test_known_rows():
    """The rows of a few lines, written out (the expressions agree: _check)."""
    assert _check(SCAN.light_fields, _LIGHT_LINE, [ACCESS, "x", "", "a\rb"]) == [
        (TIME, "GET", "/a/b", "200", "5120", ""), ("", "", "", "", "", "x"),
        ("", "", "", "", "", ""), ("", "", "", "", "", "a\rb")]
    assert _check(SCAN.sshd_fields, _SSHD_LINE, [FAILED, INVALID, ACCEPTED, OTHER, "x"]) == [
        ("Dec", "7", "10:00:01", "web1", "", "root", "198.51.100.4", "", "", "", ""),
        ("Dec", "17", "10:00:01", "web1", "invalid user ", "admin", "198.51.100.4", "", "", "", ""),
        ("Dec", "7", "10:00:01", "web1", "", "", "", "publickey", "alice", "2001:db8::1", ""),
        ("Dec", "7", "10:00:01", "web1", "", "", "", "", "", "",
         "Connection closed by 198.51.100.4 port 22 [preauth]"),
        ("",) * 11]
    # the lazy user: the first " from ADDRESS port N" closes it; "invalid user " is taken
    # only when a user can follow it
    rows = _check(SCAN.sshd_fields, _SSHD_LINE, [
        HEAD + "Failed password for a from b from 1.2.3.4 port 22 from 5.6.7.8 port 9",
        HEAD + "Failed password for invalid user from 1.2.3.4 port 22",
        HEAD + "Failed password for invalid user  from 1.2.3.4 port 22"])
    assert [row[4:7] for row in rows] == [("", "a from b", "1.2.3.4"),
                                          ("", "invalid user", "1.2.3.4"),
                                          ("invalid user ", "", "1.2.3.4")]
    assert SCAN.light_fields([]) == [] == SCAN.sshd_fields([])


@needs_scan
def test_bad_input_is_a_clear_error():
    for native in (SCAN.light_fields, SCAN.sshd_fields):
        with pytest.raises(TypeError, match="a line must be a str, not bytes"):
            native([ACCESS, b"x"])
        with pytest.raises(TypeError):
            native(None)
        with pytest.raises(TypeError):
            native((ACCESS,))


@needs_scan
def test_generated_and_simulated_logs(tmp_path):
    bench_access, bench_auth = _benchmark_lines(tmp_path)
    sim_access, sim_auth = _simulated_lines()
    for access in (bench_access, sim_access):
        rows = _check(SCAN.light_fields, _LIGHT_LINE, access)
        assert sum(1 for row in rows if row[0]) > 0.95 * len(rows) > 500
    for auth in (bench_auth, sim_auth):
        rows = _check(SCAN.sshd_fields, _SSHD_LINE, auth)
        assert sum(1 for row in rows if row[0]) > 0.3 * len(rows) > 100
        assert any(row[4] for row in rows) and any(row[7] for row in rows)
        assert any(row[10] for row in rows)
    # each expression over the other's lines (none of the usual shape), and over blocks
    everything = bench_access + bench_auth + sim_access + sim_auth
    _check(SCAN.light_fields, _LIGHT_LINE, everything)
    _check(SCAN.sshd_fields, _SSHD_LINE, everything)


@needs_scan
def test_edge_cases():
    for native, expression, cases in ((SCAN.light_fields, _LIGHT_LINE, LIGHT_CASES),
                                      (SCAN.sshd_fields, _SSHD_LINE, SSHD_CASES)):
        rows = [_check(native, expression, [case])[0] for case in cases]
        assert any(row[0] for row in rows) and not all(row[0] for row in rows)
        plain = [case for case in cases if "\n" not in case]
        assert _check(native, expression, plain) == [row for case, row in zip(cases, rows, strict=True)
                                                     if "\n" not in case]
        _check(native, expression, cases)   # line ends inside lines: the line-at-a-time path


@needs_scan
@pytest.mark.parametrize(("kind", "seeds"), [
    ("light", [ACCESS, '1.2.3.4 - - [07/Dec/2026:10:00:01 +0000] "POST /x?a?b HTTP/1.0" 404 -']),
    ("sshd", [FAILED, INVALID, ACCEPTED, OTHER, HEAD + "message repeated 2 times: [ x]"]),
])
def test_every_one_character_edit(kind, seeds):
    native, expression = ((SCAN.light_fields, _LIGHT_LINE) if kind == "light"
                          else (SCAN.sshd_fields, _SSHD_LINE))
    for seed in seeds:
        edits = list(_one_edits(seed))
        rows = _check(native, expression, [edit.replace("\n", "") for edit in edits])
        assert 0 < sum(1 for row in rows if row[0]) < len(rows)
        _check(native, expression, edits)


@needs_scan
@pytest.mark.parametrize(("access", "seed"), [(True, 20261207), (False, 7122026)],
                         ids=["access", "sshd"])
def test_fuzzed_lines(tmp_path, access, seed):
    bench = _benchmark_lines(tmp_path)[0 if access else 1]
    sim = _simulated_lines()[0 if access else 1]
    cases = LIGHT_CASES if access else SSHD_CASES
    native, expression = ((SCAN.light_fields, _LIGHT_LINE) if access
                          else (SCAN.sshd_fields, _SSHD_LINE))
    usual, other = _fuzz(native, expression, [*bench[:300], *sim[:300], *cases[:80]], seed)
    assert usual + other == FUZZ_LINES and usual > FUZZ_LINES // 10 and other > FUZZ_LINES // 10
