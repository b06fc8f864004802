"""Parsers of the anomaly engine, checked against hand-written log lines."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime

import pytest

from secops.anomaly import (
    CombinedParser,
    FormatError,
    JsonLinesParser,
    LineReader,
    Malformed,
    SyslogAuthParser,
    detect_format,
)
from secops.anomaly.reading import open_log


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


REF = datetime(2027, 1, 1, 0, 10, tzinfo=UTC)


def one(parser, line):
    events = parser.parse(line)
    assert len(events) == 1
    return events[0]


def test_sshd_lines():
    p = SyslogAuthParser(REF)
    e = one(p, "Dec 31 23:59:40 web1 sshd[1000]: Failed password for root from 203.0.113.9 port 4000 ssh2")
    assert (e.ts, e.action, e.success, e.user, e.ip, e.host, e.service) == (
        utc(2026, 12, 31, 23, 59, 40), "login", False, "root", "203.0.113.9", "web1", "sshd")
    assert e.endpoint == "sshd@web1"
    e = one(p, "Dec 31 23:59:41 web1 sshd[1001]: Failed password for invalid user oracle from "
               "2001:db8::7 port 22 ssh2")
    assert (e.user, e.ip, e.success, e.extra) == ("oracle", "2001:db8::7", False, {"invalid_user": True})
    e = one(p, "Dec 31 23:59:42 web1 sshd[7]: Accepted publickey for alice from 198.51.100.7 port 50 ssh2")
    assert (e.action, e.success, e.user, e.ip) == ("login", True, "alice", "198.51.100.7")
    e = one(p, "Dec 31 23:59:43 web1 sshd[7]: Invalid user admin from 192.0.2.1 port 5555")
    assert (e.action, e.user, e.ip) == ("invalid_user", "admin", "192.0.2.1")
    e = one(p, "Dec 31 23:59:44 web1 sshd[7]: Connection closed by 192.0.2.1 port 5555 [preauth]")
    assert e.action == "other"


def test_message_repeated_counts_each_attempt():
    p = SyslogAuthParser(REF)
    events = p.parse("Dec 31 23:59:40 web1 sshd[1000]: message repeated 3 times: [ Failed password "
                     "for root from 203.0.113.9 port 4000 ssh2]")
    assert [(e.action, e.success, e.ip) for e in events] == [("login", False, "203.0.113.9")] * 3


def test_sudo_lines():
    p = SyslogAuthParser(REF)
    e = one(p, "Dec 31 10:00:00 db1 sudo: pam_unix(sudo:auth): authentication failure; logname=bob "
               "uid=1000 euid=0 tty=/dev/pts/0 ruser=bob rhost=  user=bob")
    assert (e.action, e.success, e.user, e.service) == ("sudo", False, "bob", "sudo")
    e = one(p, "Dec 31 10:00:01 db1 sudo:      bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; "
               "COMMAND=/usr/bin/apt update")
    assert (e.action, e.success, e.user) == ("sudo", True, "bob")
    e = one(p, "Dec 31 10:00:02 db1 sudo:  mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; "
               "USER=root ; COMMAND=/bin/sh")
    assert (e.action, e.success, e.user) == ("sudo", False, "mallory")
    e = one(p, "Dec 31 10:00:03 db1 sudo:      bob : 3 incorrect password attempts ; TTY=pts/0 ; "
               "PWD=/home/bob ; USER=root ; COMMAND=/bin/ls")
    assert e.action == "sudo_summary"


def test_year_inferred_across_new_year():
    p = SyslogAuthParser(REF)   # file written just after New Year 2027
    a = one(p, "Dec 31 23:59:59 h sshd[1]: Connection closed by 192.0.2.1 port 1")
    b = one(p, "Jan  1 00:00:01 h sshd[1]: Connection closed by 192.0.2.1 port 1")
    late = one(p, "Dec 31 23:59:58 h sshd[1]: Connection closed by 192.0.2.1 port 1")
    assert (a.ts, b.ts, late.ts) == (utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1, 0, 0, 1),
                                     utc(2026, 12, 31, 23, 59, 58))
    # A file written in June: a December line belongs to the previous year.
    p = SyslogAuthParser(datetime(2027, 6, 1, tzinfo=UTC))
    assert one(p, "Dec  1 00:00:00 h cron[1]: x").ts == utc(2026, 12, 1)
    p = SyslogAuthParser(datetime(2027, 6, 1, tzinfo=UTC))
    assert one(p, "May 31 00:00:00 h cron[1]: x").ts == utc(2027, 5, 31)


def test_iso_syslog_timestamp_and_bad_dates():
    p = SyslogAuthParser(REF)
    e = one(p, "2026-12-07T01:02:03.123456+01:00 web1 sshd[5]: Failed password for bob from "
               "192.0.2.5 port 1 ssh2")
    assert (e.ts, e.user) == (utc(2026, 12, 7, 0, 2, 3) + 0.123456, "bob")
    with pytest.raises(Malformed):
        SyslogAuthParser(REF).parse("Feb 30 00:00:00 h sshd[1]: x")
    with pytest.raises(Malformed):
        p.parse("hello world")


def test_combined_lines():
    p = CombinedParser()
    e = one(p, '203.0.113.5 - carol [07/Dec/2026:01:02:03 +0200] "GET /admin/login.php?x=1 HTTP/1.1" '
               '404 153 "-" "gobuster/3.6"')
    assert (e.ts, e.ip, e.user, e.method, e.path, e.status, e.bytes, e.extra["user_agent"]) == (
        utc(2026, 12, 6, 23, 2, 3), "203.0.113.5", "carol", "GET", "/admin/login.php", 404, 153,
        "gobuster/3.6")
    assert e.endpoint == "/admin/login.php"
    e = one(p, '192.0.2.9 - - [07/Dec/2026:01:02:04 +0000] "-" 400 - "-" "-"')
    assert (e.path, e.status, e.bytes, e.user) == (None, 400, 0, None)
    e = one(p, '192.0.2.9 - - [07/Dec/2026:01:02:04 +0000] "GET /a\\"b HTTP/1.1" 200 5')  # common
    assert (e.path, e.status) == ('/a\\"b', 200)
    for bad in ('192.0.2.9 - - [07/Foo/2026:01:02:04 +0000] "GET / HTTP/1.1" 200 5',
                "192.0.2.9 GET / 200"):
        with pytest.raises(Malformed):
            p.parse(bad)


def test_json_lines_default_and_mapped_fields():
    p = JsonLinesParser()
    e = one(p, '{"ts": "2026-12-07T01:02:03Z", "event": "login", "ip": "192.0.2.1", "user": "dan", '
               '"success": false, "mfa": "yes", "role": "admin", "app": "vpn"}')
    assert (e.ts, e.action, e.ip, e.user, e.success, e.mfa, e.role, e.extra) == (
        utc(2026, 12, 7, 1, 2, 3), "login", "192.0.2.1", "dan", False, True, "admin", {"app": "vpn"})
    e = one(p, '{"ts": 1796605323, "event": "download", "user": "dan", "bytes": "4096", "file": "a.csv"}')
    assert (e.ts, e.action, e.bytes, e.extra["file"]) == (1796605323.0, "download", 4096, "a.csv")
    mapped = JsonLinesParser({"ts": "@timestamp", "event": "event.action", "ip": "source.ip",
                              "user": "user.name", "success": "event.outcome"})
    e = one(mapped, '{"@timestamp": "2026-12-07T01:02:03+00:00", "event": {"action": "authentication",'
                    ' "outcome": "failure"}, "source": {"ip": "192.0.2.3"}, "user": {"name": "eve"}}')
    assert (e.action, e.success, e.ip, e.user) == ("login", False, "192.0.2.3", "eve")
    for bad in ('[1, 2]', '{"event": "login"}', '{"ts": "yesterday", "event": "x"}', "{nope",
                '{"ts": 1, "event": "x", "success": "maybe"}', '{"ts": 1, "event": "x", "bytes": "a"}'):
        with pytest.raises(Malformed):
            p.parse(bad)


def test_format_detected_per_file():
    assert detect_format(["Dec  7 01:02:03 h sshd[1]: x"] * 3 + ["junk"]) == "syslog"
    assert detect_format(['192.0.2.9 - - [07/Dec/2026:01:02:04 +0000] "GET / HTTP/1.1" 200 5']) == "combined"
    assert detect_format(['{"ts": 1, "event": "x"}', "", '{"ts": 2, "event": "y"}']) == "jsonl"
    with pytest.raises(FormatError):
        detect_format(["hello", "world"])


def test_malformed_lines_counted_and_sampled_never_fatal():
    lines = ['{"ts": 1, "event": "x"}'] + [f"junk {i}" for i in range(8)] + ['{"ts": 2, "event": "y"}']
    reader = LineReader(JsonLinesParser(), origin="app.jsonl")
    events = list(reader.events(lines))
    assert [e.ts for e in events] == [1.0, 2.0]
    assert (reader.stats.lines, reader.stats.events, reader.stats.malformed) == (10, 2, 8)
    assert reader.stats.samples == [f"app.jsonl:{i + 2}: not JSON: junk {i}" for i in range(5)]


@pytest.mark.parametrize("reading", ["events", "json_lines"])
def test_json_numbers_beyond_a_float_are_malformed_lines(reading):
    big = "1" + "0" * 400
    lines = ['{"ts": 1, "event": "x"}',
             '{"ts": 2, "event": "download", "bytes": 1e999}',
             '{"ts": 3, "event": "request", "status": -1e999}',
             f'{{"ts": {big}, "event": "y"}}',
             '{"ts": NaN, "event": "y"}',
             '{"ts": Infinity, "event": "y"}',
             '{"ts": 4, "event": "z", "bytes": NaN}',
             '{"ts": 5, "event": "last"}']
    reader = LineReader(JsonLinesParser(), origin="app.jsonl")
    events = list(getattr(reader, reading)(lines))
    assert [(e.ts, e.action) for e in events] == [(1.0, "x"), (5.0, "last")]
    assert (reader.stats.lines, reader.stats.events, reader.stats.malformed) == (8, 2, 6)
    assert [s.split(": ")[1] for s in reader.stats.samples] == [   # (five samples kept)
        "status and bytes must be integers", "status and bytes must be integers",
        "bad timestamp", "bad timestamp", "bad timestamp"]


def test_gzip_file_read_and_year_from_mtime(tmp_path):
    path = tmp_path / "auth.log.1.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("Dec 31 23:59:59 h sshd[1]: Failed password for bob from 192.0.2.1 port 1 ssh2\n"
                 "Jan  1 00:00:01 h sshd[1]: Failed password for bob from 192.0.2.1 port 1 ssh2\n")
    os.utime(path, (REF.timestamp(), REF.timestamp()))
    log, events = open_log(path)
    assert log.format == "syslog"
    assert [e.ts for e in events] == [utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1, 0, 0, 1)]


@pytest.mark.parametrize(("message", "expected"), [
    ("Connection closed by 203.0.113.9 port 52311 [preauth]", False),
    ("error: kex_exchange_identification: Connection closed by remote host", True),
    ("ERROR: something", True),
    ("fatal: Access denied for user root by PAM account configuration", True),
    ("Fatal Error in daemon", True),
    ("kernel: segfault at 0 ip 00007f", True),
    ("out of memory: Killed process 4242", True),
    ("process 7 core dumped", True),
    ("a CRITICAL condition", True),
    ("kernel PANIC", True),
    ("errors: 3", False),             # "error" is a word of its own only
    ("terror in the night", False),
    ("non-fatal", False),             # "fatal" alone counts only at the start
    ("criticality assessment", False),
    ("panicked", False),
    ("pre-error: x", False),          # "error" too
    ("x error", False),
    ("ſegfault here", True),          # the long s is an s to a case-blind search
    ("\u212aernel \u212aritical", False),
    ("critical\u00e9", False),        # é is a letter: no word boundary
    ("", False),
])
def test_error_messages_are_those_the_expression_finds(message, expected):
    from secops.anomaly.parsers import _SYSLOG_ERROR, error_message

    assert error_message(message) is expected
    assert (_SYSLOG_ERROR.search(message) is not None) is expected


def test_error_message_agrees_with_the_expression_on_fuzzed_messages():
    import random

    from secops.anomaly.parsers import _SYSLOG_ERROR, error_message

    r = random.Random(3)
    words = ["error", "Error", "fatal", "FATAL", "segfault", "panic", "out of memory",
             "core dumped", "fatal error", "critical", "Connection", "closed", "by", "port",
             "[preauth]", "ſegfault", "x", "-", "_", "1", "é", "\u212a", "errors", "ERR"]
    found = 0
    for _ in range(20_000):
        msg = "".join(r.choice(words) + r.choice(("", " ", ":", "_", "-", "é"))
                      for _ in range(r.randint(0, 6)))
        if r.random() < 0.3 and msg:   # a character changed, dropped or added
            i = r.randrange(len(msg))
            msg = msg[:i] + r.choice(("", "a", "E", " ", "\u0130", "k")) + msg[i + 1:]
        expected = _SYSLOG_ERROR.search(msg) is not None
        found += expected
        assert error_message(msg) is expected, msg
    assert 2_000 < found < 18_000   # both outcomes well represented
