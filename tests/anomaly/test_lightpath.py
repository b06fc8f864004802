"""The local command's light requests (access log lines that only baseline rules read, kept
as tuples instead of events) give byte for byte the output of the general path: plain
reading, every line an event, ``Detector(fast=False)``."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import random
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from secops.anomaly import Detector, RuleSet
from secops.anomaly.parsers import DETECT_LINES, LineReader, detect_format, make_parser
from secops.anomaly.reading import lines, log_files, merged, open_log, open_text
from secops.cli.anomaly import run_detect

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
T0 = datetime(2026, 12, 31, 20, 0, tzinfo=UTC).timestamp()
MTIME = datetime(2027, 1, 1, 12, 0, tzinfo=UTC).timestamp()

# request rules the light path takes (baselines by path, rules on status and method only)
# next to ones it must not (other bucket types on the same requests)
TIGHT = """\
rules:
  - id: tight-path-rate
    title: t
    severity: medium
    match: {action: request, method: [GET, HEAD]}
    group_by: path
    entity_type: endpoint
    bucket: {type: baseline, interval: 60, alpha: 0.5, z: 0.5, ratio: 1.5, min_value: 4,
             min_history: 2}
    incident_gap: 30
  - id: tight-path-bytes
    title: t
    severity: low
    match: {action: request, status: {lt: 400}}
    group_by: endpoint
    bucket: {type: baseline, sum: bytes, interval: 120, z: 1, ratio: 1.2, min_value: 5000,
             min_history: 1}
  - id: tight-server-errors
    title: t
    severity: high
    match: {action: request, status: {gte: 500}}
    group_by: ip
    bucket: {type: counter, window: 60, threshold: 3}
  - id: tight-posts
    title: t
    severity: low
    match: {action: request, method: POST, level: {exists: false}}
    group_by: ip
    bucket: {type: leaky, capacity: 2, leak: 30}
"""
# a rule that reads the path of every request: every request must be an event
BY_PATH = """\
rules:
  - id: admin-paths
    title: t
    severity: high
    match: {action: request, path: {re: "^/admin"}}
    group_by: ip
    bucket: {type: counter, window: 300, threshold: 2}
"""
# a rule without a match reads every line
EVERYTHING = """\
rules:
  - id: any-line
    title: t
    severity: low
    group_by: ip
    bucket: {type: counter, window: 10, threshold: 50}
"""
SIGMA = """\
title: Web shell request
id: 7d6f6a3e-5c55-4f0b-9a53-1c1a7e0b5a11
status: test
level: high
logsource: {category: webserver}
detection:
  selection:
    path|contains: /shell
  condition: selection
"""


def _stamp(t: float, kind: str) -> str:
    w = datetime.fromtimestamp(t, UTC)
    if kind == "combined":
        return f"{w.day:02d}/{MONTHS[w.month - 1]}/{w.year}:{w:%H:%M:%S} +0000"
    return f"{MONTHS[w.month - 1]} {w.day:>2} {w:%H:%M:%S}"


def adversarial_logs(folder: Path, seed: int, n: int = 6000) -> None:
    """Access logs (rotated, one gzipped), auth.log across New Year and JSON lines: bursts,
    idle gaps past every window and baseline, lines out of order within and across files,
    odd request lines, 5xx, credentials in query strings, malformed and blank lines."""
    r = random.Random(seed)
    ips = [f"198.51.100.{i}" for i in range(1, 12)] + ["2001:db8::5"]
    paths = ["/", "/a", "/b", "/shell.php", "/admin/x", "/api/v1/items"]
    files: dict[str, list[str]] = {"access.log": [], "access.log.1": [], "access.log.2.gz": [],
                                   "auth.log": [], "app.jsonl": []}
    t = T0
    for i in range(n):
        roll = r.random()
        if roll < 0.002:
            t += r.choice((3600.0, 30_000.0))
        elif roll < 0.04:
            t -= r.uniform(0, 90)                        # late lines
        else:
            t += r.expovariate(1 / (0.05 if r.random() < 0.4 else 2.0))
        kind = r.random()
        if kind < 0.7:
            name = ("access.log.2.gz", "access.log.1", "access.log")[min(2, int(3 * i / n))]
            method = r.choice(("GET", "GET", "GET", "POST", "HEAD", "PUT"))
            path = r.choice(paths) + r.choice(("", "", "?q=1", "?", f"?p={i}"))
            if r.random() < 0.01:
                token = "ghp_" + "".join(r.choices(string.ascii_letters + string.digits, k=36))
                path += f"?access_token={token}"
            request = r.choice([f"{method} {path} HTTP/1.1"] * 30 + [
                "-", f"{method}  HTTP/1.1", f"{method} {path}", f'{method} /q\\"x HTTP/1.0',
                f"{method} {path} HTTP/1.1 extra", f"{method} ?only HTTP/1.1", ""])
            status = r.choice((200, 200, 200, 304, 404, 429, 500, 503))
            size = r.choice((str(r.randint(0, 9000)), "-", "0"))
            stamp = _stamp(t, "combined")
            if r.random() < 0.005:
                stamp = stamp.replace(stamp[:2], "32", 1)   # a bad day: malformed
            tail = r.choice((' "-" "curl/8"', ' "-" "Mozilla/5.0"', "", ' "-" "x" trailing'))
            line = f'{r.choice(ips)} - {r.choice(("-", "bob"))} [{stamp}] "{request}" {status} {size}{tail}'
            if r.random() < 0.003:
                line = r.choice(("garbage line", "", "   ", line[:20]))
            if r.random() < 0.01:
                line += "\r"
            files[name].append(line)
        elif kind < 0.9:
            files["auth.log"].append(auth_line(r, t, i, ips))
        else:
            when = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
            event = r.choice(("download", "login", "view"))
            record = {"ts": when, "event": event, "user": r.choice(("alice", "bob")),
                      "ip": r.choice(ips), "success": r.random() < 0.7,
                      "bytes": r.randint(0, 90_000)}
            if r.random() < 0.02:
                record["level"] = "error"
                record["message"] = f"worker {r.randint(1, 3)} crashed"
            files["app.jsonl"].append(json.dumps(record))
    for name, written in files.items():
        path = folder / name
        text = "".join(line + "\n" for line in written)
        if name.endswith(".gz"):
            with gzip.open(path, "wt", newline="") as fh:
                fh.write(text)
        else:
            path.write_text(text, newline="")
        os.utime(path, (MTIME, MTIME))


def auth_line(r: random.Random, t: float, i: int, ips: list[str]) -> str:
    """sshd and sudo lines of many shapes: the usual ones, and ones only the parser reads
    (a priority prefix, ISO stamps, repeats, odd spacing, users with spaces) or nobody
    (a bad month, 29 February of a common year)."""
    user = r.choice(("root", "admin", "alice", "bob", "we ird", ""))
    ip = r.choice(ips)
    msg = r.choice([
        f"Failed password for {user} from {ip} port {r.randint(1, 65535)} ssh2",
        f"Failed password for invalid user {user} from {ip} port 5 ssh2",
        f"Failed none for {user} from {ip} port 7 ssh2",
        f"Failed keyboard-interactive/pam for {user} from {ip} port 9 ssh2 from 1.2.3.4 port 8",
        f"Accepted publickey for {user or 'carol'} from {ip} port 22 ssh2",
        f"Accepted password for {user or 'carol'} from {ip} port 22",
        f"Accepted publickey for {user} from {ip}",
        f"Invalid user {user} from {ip} port 3",
        f"Connection closed by {ip} port 22 [preauth]",
        f"error: kex_exchange_identification: read: Connection reset by {ip}",
        f"message repeated 3 times: [ Failed password for {user} from {ip} port 1 ssh2]",
    ] * 3 + [f" Failed password for {user} from {ip} port 2 ssh2"])
    stamp = _stamp(t, "syslog")
    prog = f"sshd[{i}]" if r.random() < 0.95 else r.choice(("sshd", "sudo", "sshd[x]"))
    line = f"{stamp} web1 {prog}: {msg}"
    odd = r.random()
    if odd < 0.01:
        line = "<38>" + line
    elif odd < 0.02:
        iso = datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
        line = f"{iso} web1 {prog}: {msg}"
    elif odd < 0.025:
        line = line.replace(stamp[:3], "Foo", 1)
    elif odd < 0.03:
        line = "Feb 29 10:00:00" + line[len(stamp):]
    elif odd < 0.035:
        line = line.replace(" web1 ", " web1  ", 1)
    return line


def plain_reading(path: Path) -> tuple[list[Any], dict[str, object]]:
    """The events of a file as the parser gives them a line at a time, and its counts."""
    reference = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    with open_text(path) as fh:
        head = [line.rstrip("\r\n") for _, line in zip(range(DETECT_LINES * 4), fh)]
    fmt = detect_format(head, reference=reference)
    reader = LineReader(make_parser(fmt, reference=reference), origin=path.name)
    with open_text(path) as fh:
        events = list(reader.events(lines(fh)))
    return events, reader.stats.to_dict()


def general(folder: Path, rules: RuleSet) -> tuple[str, int, list[dict[str, object]]]:
    """The oracle: every line an event read a line at a time, the general steps of the
    detector."""
    read = [plain_reading(path) for path in log_files([folder])]
    detector = Detector(rules, fast=False)
    detector.feed_all(merged(iter(events) for events, _ in read))
    alerts = detector.finish()
    text = "".join(json.dumps(a.to_dict()) + "\n" for a in alerts)
    return text, 1 if alerts else 0, [stats for _, stats in read]


def command(folder: Path, rules: RuleSet) -> tuple[str, int]:
    out = io.StringIO()
    status = run_detect((str(folder),), as_json=True, rules=rules, out=out)
    return out.getvalue(), status


def light_reading(folder: Path, rules: RuleSet) -> tuple[int, list[dict[str, object]]]:
    """Light tuples read, and each file's counts; every tuple is the event the general
    reading gives for its line."""
    detector = Detector(rules)
    light, stats = 0, []
    for path in log_files([folder]):
        log, items = open_log(path, light=detector.light_plan)
        plain, _ = plain_reading(path)
        got = []
        for item in items:
            if item.__class__ is tuple:
                light += 1
                event = Detector._light_event(item)
                assert (item[0], item[1], item[2], item[4], item[5]) == (
                    event.ts, event.endpoint, event.raw, event.bytes, event.origin)
                item = event
            got.append(item)
        assert got == plain
        stats.append(log.stats.to_dict())
    return light, stats


def rule_set(tmp_path: Path, *texts: tuple[str, str]) -> RuleSet:
    if not texts:
        return RuleSet.shipped()
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in texts:
        (folder / name).write_text(text)
    rules = RuleSet.load(folder)
    assert not rules.problems
    return rules


@pytest.mark.parametrize(("seed", "extra", "light_expected"), [
    (1, (), True),
    (2, (("tight.yaml", TIGHT),), True),
    (3, (("tight.yaml", TIGHT),), True),
    (4, (("path.yaml", BY_PATH),), False),
    (5, (("any.yaml", EVERYTHING),), False),
    (6, (("shell.yml", SIGMA),), False),
])
def test_light_requests_give_the_output_of_the_general_path(tmp_path, seed, extra, light_expected):
    logs = tmp_path / "logs"
    logs.mkdir()
    adversarial_logs(logs, seed)
    rules = rule_set(tmp_path, *extra)
    want, want_status, want_stats = general(logs, rules)
    light, stats = light_reading(logs, rules)
    assert (light > 1000) is light_expected and (light == 0) is not light_expected
    assert stats == want_stats
    assert sum(1 for s in stats if s["malformed"]) >= 3   # the access logs and auth.log
    got, status = command(logs, rules)
    assert got == want
    assert status == want_status == 1
    fired = {json.loads(line)["rule"] for line in got.splitlines()}
    assert "secret-in-log" in fired
    if extra and extra[0][0] == "tight.yaml":
        assert {"tight-path-rate", "tight-path-bytes", "tight-server-errors",
                "tight-posts"} <= fired


def _benchmark_generate():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "anomaly.py"
    spec = importlib.util.spec_from_file_location("anomaly_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


@pytest.mark.parametrize(("size", "seed"), [(2_000_000, 7), (3_000_000, 3)])
def test_light_requests_on_the_benchmark_log(tmp_path, size, seed):
    _benchmark_generate()(tmp_path, size, seed)
    rules = RuleSet.shipped()
    want, want_status, _ = general(tmp_path, rules)
    got, status = command(tmp_path, rules)
    assert got == want
    assert status == want_status == 1
    assert "endpoint-request-spike" in got


def test_light_requests_on_a_simulated_day(tmp_path):
    from tests.anomaly.logsim import simulate

    simulate(8, history_days=1).write(tmp_path)
    (tmp_path / "baseline.json").unlink()
    rules = RuleSet.shipped()
    want, want_status, _ = general(tmp_path, rules)
    light, _ = light_reading(tmp_path, rules)
    assert light > 1000
    got, status = command(tmp_path, rules)
    assert got == want
    assert status == want_status == 1


def test_a_light_request_is_refused_by_a_detector_without_the_fast_path() -> None:
    """Only the fast path's own plans make light requests; the general path names the
    mix-up instead of reading a tuple as an event."""
    light = (1_700_000_000.0, "/", '1.2.3.4 - - "GET / HTTP/1.1" 200 5', (), 5, "access.log")
    with pytest.raises(TypeError, match="light request"):
        Detector(RuleSet.shipped(), fast=False).feed_all([light])


def test_hostile_access_log_lines_are_read_one_line_at_a_time(tmp_path):
    """Lines that open a bracket, a quote or a path and never close them are each their
    own line to the block expression (none runs on into the next lines, which made the
    work grow with the square of the block), and the output is the general path's."""
    from secops.anomaly.parsers import _LIGHT_LINE

    good = '203.0.113.9 - - [07/Dec/2026:10:00:{s:02d} +0000] "GET /a?q=1 HTTP/1.1" 200 {n} "-" "x"'
    hostile = ['a b c [x', '1.2.3.4 - - [07/Dec/2026:10:00:00 +0000] "GET /x', 'a b c [x] "GET /',
               '1.2.3.4 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 ' + "9" * 40]
    block = [good.format(s=i % 60, n=i) if i % 7 == 0 else hostile[i % 4] for i in range(700)]
    found = _LIGHT_LINE.findall("\n".join(block))
    assert len(found) == len(block)
    assert [bool(f[0]) for f in found] == [i % 7 == 0 for i in range(len(block))]
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "access.log").write_text("\n".join(block) + "\n")
    rules = RuleSet.shipped()
    assert command(tmp_path / "logs", rules) == general(tmp_path / "logs", rules)[:2]
    _, stats = light_reading(tmp_path / "logs", rules)
    assert stats[0]["malformed"] == 700 - 100   # the 100 good lines are read


def test_oversized_byte_counts_are_malformed_lines_not_a_failed_run(tmp_path):
    (tmp_path / "logs").mkdir()
    line = '198.51.100.4 - - [07/Dec/2026:10:00:0{i} +0000] "GET / HTTP/1.1" 200 {n} "-" "x"'
    (tmp_path / "logs" / "access.log").write_text("\n".join(
        [line.format(i=i, n=5) for i in range(5)]
        + [line.format(i=5, n="7" * 5000), line.format(i=6, n="8" * 20)]) + "\n")
    (tmp_path / "logs" / "portal.jsonl").write_text("\n".join(json.dumps(
        {"ts": 1_796_637_600 + i, "event": "download", "user": "ann", "ip": "192.0.2.1",
         "bytes": b}) for i, b in enumerate((10, 10 ** 30, -(10 ** 30), 12))) + "\n")
    rules = RuleSet.shipped()
    out, status = command(tmp_path / "logs", rules)
    assert (out, status) == general(tmp_path / "logs", rules)[:2]
    assert sorted(s["malformed"] for s in general(tmp_path / "logs", rules)[2]) == [2, 2]


def test_the_light_plans_of_a_log_full_of_invented_methods_stay_bounded(tmp_path):
    from secops.anomaly.detector import LIGHT_PLANS

    r = random.Random(5)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "access.log").write_text("".join(
        f'192.0.2.{i % 200} - - [07/Dec/2026:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] '
        f'"{"".join(r.choice(string.ascii_uppercase) for _ in range(12))} /api/{i % 9} '
        f'HTTP/1.1" 200 {i} "-" "x"\n' for i in range(3000)))
    rules = RuleSet.shipped()
    detector = Detector(rules)
    _, items = open_log(tmp_path / "logs" / "access.log", light=detector.light_plan)
    detector.feed_all(items)
    assert len(detector._light) == LIGHT_PLANS
    assert command(tmp_path / "logs", rules) == general(tmp_path / "logs", rules)[:2]
