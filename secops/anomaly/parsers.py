"""Log parsers: syslog ``auth.log`` (sshd, sudo), nginx/apache ``combined``, JSON lines.

A parser turns one line into zero or more :class:`Event` (``message repeated N times``
gives N) or raises :class:`Malformed`. :func:`detect_format` picks the parser of a file
from its first lines; :class:`LineReader` runs a parser over a stream of lines, counting
malformed lines and keeping the first few as samples, never stopping on them.

Syslog timestamps (RFC 3164, ``Dec  7 01:02:03``) carry no year and no zone: they are
read as UTC, the first line's year is the reference time's year (the previous year when
that would put the line more than a day after the reference), and the year steps on when
the month goes back (December to January). ISO 8601 timestamps (RFC 5424, rsyslog's
high-precision format) are read as written.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from secops.anomaly import _native
from secops.anomaly.errors import FormatError
from secops.anomaly.events import LOGIN_ACTIONS, Event

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
SAMPLE_LIMIT = 5
DETECT_LINES = 50


class Malformed(ValueError):
    """A line that the file's format cannot read."""


class Parser(Protocol):
    name: str

    def parse(self, line: str) -> list[Event]: ...


def _iso_ts(text: str) -> float:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


# --- syslog ----------------------------------------------------------------------

_SYSLOG = re.compile(
    r"(?:<\d{1,3}>)?(?:(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)"
    r"|(?:1 )?(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?))"
    r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)\Z", re.S)
_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?) ?\]\Z", re.S)
_SSH_FAILED = re.compile(
    r"Failed (?:password|publickey|keyboard-interactive/pam|none|hostbased) for "
    r"(?P<invalid>invalid user )?(?P<user>.*?) from (?P<ip>[0-9A-Fa-f:.]+) port \d+")
_SSH_ACCEPTED = re.compile(
    r"Accepted (?P<how>\S+) for (?P<user>\S+) from (?P<ip>[0-9A-Fa-f:.]+) port \d+")
_SSH_INVALID = re.compile(r"Invalid user (?P<user>.*?) from (?P<ip>[0-9A-Fa-f:.]+)(?: port \d+)?\Z")
_PAM_FAIL = re.compile(r"pam_unix\(sudo:auth\): authentication failure;.*?\bruser=(?P<ruser>\S*)"
                       r".*?\buser=(?P<user>\S+)")
_SYSLOG_ERROR = re.compile(r"^(?:error|fatal)\b|\b(?:segfault|panic|out of memory|core dumped|"
                           r"fatal error|critical)\b", re.I)
# every word the expression can match: an ASCII message holding none of them in lower
# case cannot match it (a search of the expression costs far more than these look-ups)
_ERROR_WORDS = ("error", "fatal", "segfault", "panic", "out of memory", "core dumped", "critical")


def error_message(msg: str) -> bool:
    """Whether a syslog message reports an error (``_SYSLOG_ERROR`` finds it)."""
    if msg.isascii():
        low = msg.lower()
        for word in _ERROR_WORDS:
            if word in low:
                break
        else:
            return False
    return _SYSLOG_ERROR.search(msg) is not None
ERROR_LEVELS = frozenset({"error", "err", "critical", "crit", "fatal", "alert", "emerg",
                          "emergency", "panic"})
_SUDO_CMD = re.compile(r"\s*(?P<user>\S+) : (?P<what>.*?)(?:TTY|PWD|USER|COMMAND)=")


class YearInference:
    """Assigns years to RFC 3164 timestamps, stepping on across New Year."""

    def __init__(self, reference: datetime) -> None:
        self.reference = reference
        self.year: int | None = None
        self.month = 0

    def timestamp(self, month: int, day: int, hms: str) -> float:
        hour, minute, second = int(hms[0:2]), int(hms[3:5]), int(hms[6:8])
        if self.year is None:
            year = self.reference.year
            if _civil(year, month, min(day, 28), 0, 0, 0) > self.reference.timestamp() + 86400:
                year -= 1
            self.year = year
        elif month < self.month - 6:
            self.year += 1
        elif month > self.month + 6:   # a late line from before New Year
            return _civil(self.year - 1, month, day, hour, minute, second)
        self.month = month
        return _civil(self.year, month, day, hour, minute, second)


def _civil(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float:
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()
    except ValueError as exc:  # Feb 29 in a non-leap year, 25:00:00...
        raise Malformed(f"bad timestamp: {exc}") from None


class SyslogAuthParser:
    """sshd and sudo lines of ``auth.log``; other programs' lines become ``other``."""

    name = "syslog"

    def __init__(self, reference: datetime | None = None) -> None:
        self.years = YearInference(reference or datetime.now(UTC))
        # the last RFC 3164 stamp read and its time: the same stamp again gives the same
        # time and leaves the year inference as it was, and lines share their second
        self._last_stamp: tuple[str, ...] | None = None
        self._last_ts = 0.0

    def parse(self, line: str) -> list[Event]:
        m = _SYSLOG.match(line)
        if m is None:
            raise Malformed("not a syslog line")
        stamp = m.group("mon", "day", "hms")
        if stamp == self._last_stamp:
            ts = self._last_ts
        elif stamp[0] is not None:
            ts = self.stamp_ts(stamp)
        else:
            try:
                ts = _iso_ts(m.group("iso"))
            except ValueError:
                raise Malformed("bad timestamp") from None
        host, prog, msg = m.group("host"), m.group("prog"), m.group("msg")
        repeat = 1
        r = _REPEATED.match(msg) if msg.startswith("message repeated ") else None
        if r is not None:
            repeat, msg = int(r.group(1)), r.group(2)
        event = self._event(ts, host, prog, msg, line)
        return [event] if repeat == 1 else [event] * repeat

    def stamp_ts(self, stamp: tuple[str, ...]) -> float:
        """The time of an RFC 3164 stamp (month, day, time) other than the last one read,
        the year inferred; it becomes the last one."""
        month = MONTHS.get(stamp[0])
        if month is None:
            raise Malformed("bad month")
        ts = self.years.timestamp(month, int(stamp[1]), stamp[2])
        self._last_stamp, self._last_ts = stamp, ts
        return ts

    @staticmethod
    def _event(ts: float, host: str, prog: str, msg: str, line: str) -> Event:
        if prog == "sshd":
            f = _SSH_FAILED.match(msg)
            if f is not None:
                # positional: a third of the cost of keywords, on the most frequent lines
                ip, user, invalid = f.group("ip", "user", "invalid")
                return Event(ts, "login", line, "auth", "", False, ip, user, host, "sshd", None,
                             None, None, None, None, None, None,
                             {"invalid_user": True} if invalid else {})
            a = _SSH_ACCEPTED.match(msg)
            if a is not None:
                ip, user, how = a.group("ip", "user", "how")
                return Event(ts, "login", line, "auth", "", True, ip, user, host, "sshd", None,
                             None, None, None, None, None, None, {"method": how})
            i = _SSH_INVALID.match(msg)
            if i is not None:
                return Event(ts, "invalid_user", line, "auth", ip=i.group("ip"),
                             user=i.group("user"), host=host, service="sshd")
        elif prog == "sudo":
            p = _PAM_FAIL.match(msg)
            if p is not None:
                user = p.group("ruser") or p.group("user")
                return Event(ts, "sudo", line, "auth", success=False, user=user, host=host,
                             service="sudo")
            c = _SUDO_CMD.match(msg)
            if c is not None:
                what = c.group("what")
                if what == "":
                    return Event(ts, "sudo", line, "auth", success=True, user=c.group("user"),
                                 host=host, service="sudo")
                if "NOT in sudoers" in what or "command not allowed" in what:
                    return Event(ts, "sudo", line, "auth", success=False, user=c.group("user"),
                                 host=host, service="sudo", extra={"refused": True})
                # "3 incorrect password attempts": a summary of attempts already counted
                return Event(ts, "sudo_summary", line, "auth", user=c.group("user"), host=host,
                             service="sudo")
        return Event(ts, "other", line, "auth", "", None, None, None, host, prog, None, None,
                     None, None, None, None, "error" if error_message(msg) else None, {})


# --- combined access log --------------------------------------------------------

_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
# A byte count of more digits than this is not a size any server logs (and would not fit
# the baselines' floats): the line is malformed.
MAX_BYTES_DIGITS = 19
MAX_BYTES = 10 ** MAX_BYTES_DIGITS
_COMBINED = re.compile(
    r"(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] " + _Q
    + r" (?P<status>\d{3}) (?P<bytes>\d+|-)(?: " + _Q + " " + _Q + r")?")


class CombinedParser:
    """nginx/apache ``combined`` (and ``common``) access log lines."""

    name = "combined"

    def __init__(self) -> None:
        self._last_time = ""
        self._last_ts = 0.0

    def _ts(self, text: str) -> float:
        if text == self._last_time:
            return self._last_ts
        # 07/Dec/2026:01:02:03 +0000
        try:
            month = MONTHS[text[3:6]]
            when = datetime(int(text[7:11]), month, int(text[0:2]), int(text[12:14]),
                            int(text[15:17]), int(text[18:20]), tzinfo=UTC)
            off = text[21:26]
            ts = when.timestamp()
            if off:
                sign = -1 if off[0] == "-" else 1
                ts -= sign * (int(off[1:3]) * 3600 + int(off[3:5]) * 60)
        except (KeyError, ValueError, IndexError):
            raise Malformed("bad timestamp") from None
        self._last_time, self._last_ts = text, ts
        return ts

    def parse(self, line: str) -> list[Event]:
        m = _COMBINED.match(line)
        if m is None:
            raise Malformed("not a combined log line")
        ip, user, time_, request, status, size, agent = m.group(1, 2, 3, 4, 5, 6, 8)
        parts = request.split(" ")
        method, path = (parts[0], parts[1]) if len(parts) >= 2 else (None, None)
        if path is not None:
            q = path.find("?")
            if q >= 0:
                path = path[:q]
        if len(size) > MAX_BYTES_DIGITS:
            raise Malformed("bytes out of range")
        extra: dict[str, Any] = {"user_agent": agent} if agent else {}
        code = int(status)
        ts = self._last_ts if time_ == self._last_time else self._ts(time_)
        return [Event(ts, "request", line, "http", "", None, ip,
                      None if user == "-" else user, None, None, method, path, code,
                      0 if size == "-" else int(size), None, None,
                      "error" if code >= 500 else None, extra)]


# --- JSON lines ------------------------------------------------------------------

DEFAULT_JSON_FIELDS: Mapping[str, str] = {
    "ts": "ts", "event": "event", "ip": "ip", "user": "user", "success": "success",
    "bytes": "bytes", "file": "file", "role": "role", "mfa": "mfa", "path": "path",
    "status": "status", "method": "method", "host": "host", "service": "service",
}


def _dig(record: Mapping[str, Any], dotted: str) -> Any:
    if "." not in dotted:
        return record.get(dotted)
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.lower()
        if low in ("true", "yes", "success", "ok", "1"):
            return True
        if low in ("false", "no", "failure", "fail", "failed", "0"):
            return False
    if isinstance(value, int):
        return bool(value)
    raise Malformed(f"not a boolean: {value!r}")


class JsonLinesParser:
    """One JSON object per line; ``fields`` maps our names to (dotted) keys of the record."""

    name = "jsonl"

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        self.fields = {**DEFAULT_JSON_FIELDS, **(fields or {})}
        self._mapped = set(self.fields.values())
        self._plain = not any("." in key for key in self.fields.values())
        self._same = all(name == key for name, key in self.fields.items())   # default names

    def parse(self, line: str) -> list[Event]:
        try:
            record = _loads(line)
        except ValueError:
            raise Malformed("not JSON") from None
        if not isinstance(record, dict):
            raise Malformed("not a JSON object")
        get = record.get if self._same else self._getter(record)
        raw_ts = get("ts")
        try:
            if isinstance(raw_ts, int | float) and not isinstance(raw_ts, bool):
                ts = float(raw_ts)
                if not math.isfinite(ts):   # (JSON's NaN and Infinity are no time)
                    raise ValueError(raw_ts)
            elif isinstance(raw_ts, str):
                ts = _iso_ts(raw_ts)
            else:
                raise Malformed("no timestamp")
        except (ValueError, OverflowError):   # (an int too large for a float)
            raise Malformed("bad timestamp") from None
        name = get("event")
        if not isinstance(name, str) or not name:
            raise Malformed("no event")
        action = "login" if name.lower() in LOGIN_ACTIONS else name
        status, size = get("status"), get("bytes")
        try:
            if status is not None and type(status) is not int:
                status = int(status)
            if size is not None and type(size) is not int:
                size = int(size)
        except (TypeError, ValueError, OverflowError):   # (int() of Infinity overflows)
            raise Malformed("status and bytes must be integers") from None
        if size is not None and not -MAX_BYTES < size < MAX_BYTES:
            raise Malformed("bytes out of range")
        mapped = self._mapped
        extra = {k: v for k, v in record.items() if k not in mapped}
        level = record.get("level", record.get("severity"))
        level = "error" if isinstance(level, str) and level.lower() in ERROR_LEVELS else None
        file_ = get("file")
        if file_ is not None:
            extra["file"] = file_
        success, mfa = get("success"), get("mfa")
        return [Event(ts, action, line, "json", "",   # positional, in the fields' order
                      success if success is None or success is True or success is False
                      else _bool(success),
                      _str(get("ip")), _str(get("user")), _str(get("host")),
                      _str(get("service")), _str(get("method")), _str(get("path")),
                      status, size, _str(get("role")),
                      mfa if mfa is None or mfa is True or mfa is False else _bool(mfa),
                      level, extra)]

    def _getter(self, record: dict[str, Any]) -> Callable[[str], Any]:
        """Our field name -> its value in ``record`` (plain keys read directly)."""
        if self._plain:
            fields = self.fields
            return lambda name: record.get(fields[name])
        return lambda name: _dig(record, self.fields[name])


def _str(value: Any) -> str | None:
    return None if value is None else value if type(value) is str else str(value)


# the standard decoder's scanner and whitespace expression (not in its type stubs)
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_space: Callable[[str, int], re.Match[str]] = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.JSONDecoder().decode(text)``, in one call instead of three."""
    start = 0 if text[:1] not in " \t\n\r" else _space(text, 0).end()
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    if end != len(text):
        end = _space(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
    return value


# --- detection and reading ----------------------------------------------------------

def make_parser(name: str, *, reference: datetime | None = None,
                json_fields: Mapping[str, str] | None = None) -> Parser:
    if name == "syslog":
        return SyslogAuthParser(reference)
    if name == "combined":
        return CombinedParser()
    if name == "jsonl":
        return JsonLinesParser(json_fields)
    raise FormatError(f"unknown log format {name!r} (syslog, combined, jsonl)")


def detect_format(lines: Iterable[str], *, reference: datetime | None = None,
                  json_fields: Mapping[str, str] | None = None) -> str:
    """The format that reads most of the first non-blank ``lines``; FormatError if none."""
    sample = [ln for ln in lines if ln.strip()][:DETECT_LINES]
    best, best_score = "", 0
    for name in ("jsonl", "combined", "syslog"):
        parser = make_parser(name, reference=reference, json_fields=json_fields)
        score = 0
        for ln in sample:
            try:
                parser.parse(ln)
                score += 1
            except Malformed:
                pass
        if score > best_score:
            best, best_score = name, score
    if not best:
        raise FormatError("not a recognised log format (syslog auth.log, combined access log, "
                          "JSON lines)")
    return best


@dataclass
class ParseStats:
    lines: int = 0
    events: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "events": self.events, "malformed": self.malformed,
                "malformed_samples": list(self.samples)}


class LineReader:
    """Runs a parser over lines: malformed lines are counted and sampled, never fatal."""

    def __init__(self, parser: Parser, *, origin: str = "", stats: ParseStats | None = None,
                 sample_limit: int = SAMPLE_LIMIT) -> None:
        self.parser = parser
        self.origin = origin
        self.stats = stats or ParseStats()
        self.sample_limit = sample_limit

    def _malformed(self, exc: Malformed, line: str) -> None:
        """Count a malformed line and keep it as a sample while there is room."""
        stats = self.stats
        stats.malformed += 1
        if len(stats.samples) < self.sample_limit:
            stats.samples.append(f"{self.origin}:{stats.lines}: {exc}: {line[:200]}")

    def one(self, raw: str) -> list[Event]:
        """The events of one line (none for a blank or malformed line, which is counted)."""
        line = raw.rstrip("\r\n")
        if not line.strip():
            return []
        stats = self.stats
        stats.lines += 1
        try:
            events = self.parser.parse(line)
        except Malformed as exc:
            self._malformed(exc, line)
            return []
        for event in events:
            event.origin = self.origin
        stats.events += len(events)
        return events

    def events(self, lines: Iterable[str]) -> Iterator[Event]:
        stats, parse, origin = self.stats, self.parser.parse, self.origin
        for raw in lines:
            line = raw.rstrip("\r\n") if raw[-1:] in ("\n", "\r") else raw
            if not line or line.isspace():
                continue
            stats.lines += 1
            try:
                events = parse(line)
            except Malformed as exc:
                self._malformed(exc, line)
                continue
            for event in events:
                event.origin = origin
                stats.events += 1
                yield event

    def json_lines(self, lines: list[str]) -> list[Event]:
        """:meth:`events` of a block of JSON lines. With the default field names, the
        native reader (``_JSONL``) reads each line that is a flat JSON object of the usual
        shape (its fields of the types the parser takes as they are: see ``_jsonl.pyx``)
        into the event the parser makes of it; other lines go through the parser, in
        order, with the same counts and malformed samples."""
        parser = self.parser
        if (_JSONL is None or type(parser) is not JsonLinesParser
                or parser.fields != DEFAULT_JSON_FIELDS):
            return list(self.events(lines))
        found, left = _JSONL.events(lines, self.origin)
        stats = self.stats
        if not left:
            stats.lines += len(found)
            stats.events += len(found)
            return found
        out: list[Event] = []
        read = 0   # events of the native reader not yet counted in stats
        for line, event in zip(lines, found, strict=True):
            if event is not None:
                out.append(event)
                read += 1
                continue
            stats.lines += read   # (a malformed line's sample gives its number)
            stats.events += read
            read = 0
            out.extend(self.one(line))   # (its line and events counted there)
        stats.lines += read
        stats.events += read
        return out

    def light(self, lines: list[str], plan_of: Callable[[str, str], Any]) -> list[Any]:
        """:meth:`events` of a block of ``combined`` lines, with the requests that
        ``plan_of(status, method)`` gives a plan for as light tuples ``(ts, path, line,
        plan, bytes, origin)`` instead of events (see ``Detector.light_plan``): the same
        lines, counts and malformed lines, in the same order. One expression over the
        whole block reads the requests of the usual shape (``METHOD /path HTTP/x``, no
        quote or backslash in it); other lines, and a request of a status and method
        without a plan, are parsed as :meth:`events` does."""
        parser = self.parser
        assert isinstance(parser, CombinedParser)
        found = _SCAN.light_fields(lines) if _SCAN is not None else _block_matches(_LIGHT_LINE, lines)
        stats, origin = self.stats, self.origin
        plans: dict[tuple[str, str], Any] = {}
        missing = plans   # (a value no plan can be)
        out: list[Any] = []
        last_time, last_ts = "", 0.0
        last_status = last_method = ""   # the last line's, and its plan
        last_plan: Any = None
        read = made = 0   # light lines and tuples not yet counted in stats
        for line, (time_, method, path, status, size, _) in zip(lines, found, strict=True):
            if time_:
                if status == last_status and method == last_method:   # (most often)
                    plan = last_plan
                else:
                    key = (status, method)
                    plan = plans.get(key, missing)
                    if plan is missing:
                        plan = plans[key] = plan_of(status, method)
                    last_status, last_method, last_plan = status, method, plan
                if plan is not None:
                    if time_ != last_time:
                        try:
                            last_ts = parser._ts(time_)
                        except Malformed:   # the general parse below reports it
                            last_time, plan = "", None
                        else:
                            last_time = time_
                    if plan is not None:
                        out.append((last_ts, path, line, plan, 0 if size == "-" else int(size),
                                origin))
                        read += 1
                        made += 1
                        continue
            elif not line or line.isspace():
                continue
            stats.lines += read   # (a malformed line's sample gives its number)
            read = 0
            out.extend(self.one(line))   # (its line and events counted there)
        stats.lines += read
        stats.events += made
        return out

    def syslog(self, lines: list[str]) -> list[Event]:
        """:meth:`events` of a block of ``auth.log`` lines: one expression over the whole
        block reads sshd's lines of the usual shape (an RFC 3164 stamp, ``sshd[pid]:
        Failed ... for [invalid user ]USER from IP port N``, ``Accepted HOW for USER from IP
        port N``, or a message that starts as none of sshd's expressions) into the events
        the parser makes of them; other lines go through the parser, in order (the year
        inference sees every stamp in the same order)."""
        parser = self.parser
        assert isinstance(parser, SyslogAuthParser)
        found = _SCAN.sshd_fields(lines) if _SCAN is not None else _block_matches(_SSHD_LINE, lines)
        stats, origin = self.stats, self.origin
        out: list[Event] = []
        parsed = 0   # events of the lines the parser read (counted by one())
        for line, (mon, day, hms, host, invalid, f_user, f_ip, how, a_user, a_ip, msg) in zip(
                lines, found, strict=True):
            if not mon:
                events = self.one(line)
                out.extend(events)
                parsed += len(events)
                continue
            stats.lines += 1
            stamp = (mon, day, hms)
            if stamp == parser._last_stamp:
                ts = parser._last_ts
            else:
                try:
                    ts = parser.stamp_ts(stamp)
                except Malformed as exc:
                    self._malformed(exc, line)
                    continue
            if f_ip:
                out.append(Event(ts, "login", line, "auth", origin, False, f_ip, f_user, host, "sshd",
                             None, None, None, None, None, None, None,
                             {"invalid_user": True} if invalid else {}))
            elif a_ip:
                out.append(Event(ts, "login", line, "auth", origin, True, a_ip, a_user, host, "sshd",
                             None, None, None, None, None, None, None, {"method": how}))
            else:
                out.append(Event(ts, "other", line, "auth", origin, None, None, None, host, "sshd",
                             None, None, None, None, None, None,
                             "error" if error_message(msg) else None, {}))
        stats.events += len(out) - parsed
        return out


def _block_matches(expression: re.Pattern[str], lines: list[str]) -> list[tuple[str, ...]]:
    """The groups of ``expression`` (which matches every line, ``re.M``) for each line of
    a block, by one ``findall`` over the block; a line at a time when a line end sits
    inside a line (lines not from ``blocks()``). The native scanner (``_SCAN``) gives the
    same for the two expressions below, faster; this is its fallback and its oracle."""
    found: list[tuple[str, ...]] = expression.findall("\n".join(lines))
    if len(found) != len(lines):
        found = [expression.match(line).groups("") for line in lines]  # type: ignore[union-attr]
    return found


# sshd's lines of the usual shape (see LineReader.syslog): month, day, time, host, then
# "invalid user ", user, address of a failure, or method, user, address of an acceptance,
# or the message of a line that none of sshd's expressions can read (it does not start as
# they do); any other line matches the last alternative, with every group empty
_SSHD_LINE = re.compile(
    r"^(?:([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d) (\S+) sshd\[\d+\]: "
    r"(?:Failed (?:password|publickey|keyboard-interactive/pam|none|hostbased) for "
    r"(invalid user )?(.*?) from ([0-9A-Fa-f:.]+) port \d+[^\n]*"
    r"|Accepted (\S+) for (\S+) from ([0-9A-Fa-f:.]+) port \d+[^\n]*"
    r"|(?!Failed|Accepted|Invalid|message repeated )([^\n]*))|[^\n]*)$", re.M)

# a request of the usual shape in an access log line (see LineReader.light): time, method,
# path without query, status, bytes; any other line is the last group
_LIGHT_LINE = re.compile(
    r'^(?:\S+ \S+ \S+ \[([^\]\n]+)\] "([A-Z]+) (/[^ "\\?\n]*)(?:\?[^ "\\\n]*)? [^ "\\\n]+" '
    r"([0-9]{3}) ([0-9]{1,19}|-)(?![0-9])[^\n]*|([^\n]*))$", re.M)

# _scan.light_fields and _scan.sshd_fields: what _block_matches gives for _LIGHT_LINE and
# _SSHD_LINE, by scanning characters (None when the scanner is not built or is stale)
_SCAN = _native.scanner()


def _json_lines_reader() -> Any:
    module = _native.json_reader()
    if module is None:
        return None
    try:
        return module.Reader(Event, LOGIN_ACTIONS, ERROR_LEVELS)
    except TypeError:   # an Event of other fields than the reader fills: the parser reads
        return None


# _jsonl.Reader: the events of the usual-shape JSON lines of a block, exactly as
# JsonLinesParser (default field names) makes them (None when the reader is not built or
# is stale; see LineReader.json_lines)
_JSONL = _json_lines_reader()
