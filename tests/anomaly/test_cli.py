"""``secops anomaly detect --local``: the exact output contract and exit codes."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime

from click.testing import CliRunner

from secops.cli import cli

MTIME = datetime(2027, 1, 1, 0, 30, tzinfo=UTC).timestamp()


def write(path, lines, *, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    os.utime(path, (MTIME, MTIME))
    return str(path)


def detect(*args):
    result = CliRunner().invoke(cli, ["anomaly", "detect", *args])
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, alerts, result.stderr


def ssh_fail(sec, ip, user, day="Dec 31", hour="23:59"):
    return (f"{day} {hour}:{sec:02d} web1 sshd[{100 + sec}]: Failed password for {user} from {ip} "
            f"port 4{sec:03d} ssh2")


def test_alerts_across_formats_and_new_year(tmp_path):
    auth = write(tmp_path / "auth.log", [ssh_fail(s, "203.0.113.9", "root") for s in range(50, 56)] + [
        "Jan  1 00:00:05 web1 sshd[300]: Accepted publickey for alice from 198.51.100.7 port 5000 ssh2",
        "Jan  1 00:00:09 web1 sshd[301]: Accepted publickey for bob from 192.0.2.10 port 5001 ssh2",
        "Jan  1 00:00:10 web1 sshd[302]: Failed password for invalid user admin from 192.0.2.99 port 1 ssh2",
    ])
    access = write(tmp_path / "access.log", [
        f'192.0.2.50 - - [01/Jan/2027:00:01:{i:02d} +0000] "GET /wp-{i}.php HTTP/1.1" 404 12 "-" "nikto"'
        for i in range(21)])
    app = write(tmp_path / "app.jsonl", [
        '{"ts": "2027-01-01T00:02:00Z", "event": "gdpr_access_request", "user": "erin", "ip": "192.0.2.8"}',
        "not json at all",
        '{"ts": "2027-01-01T00:03:00Z", "event": "login", "user": "erin", "ip": "192.0.2.8", '
        '"success": true}',
    ], gz=True)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"alice": ["198.51.100.8"], "bob": ["192.0.2.10"]}))
    code, alerts, err = detect("--local", "--json", "--baseline-ips", str(baseline), auth, access, app)
    assert code == 1
    nikto = [f'192.0.2.50 - - [01/Jan/2027:00:01:{i:02d} +0000] "GET /wp-{i}.php HTTP/1.1" 404 12 "-" "nikto"'
             for i in range(21)]
    assert alerts == [
        {"rule": "auth-failures-ip", "severity": "high", "entity": "203.0.113.9", "entity_type": "ip",
         "start": "2026-12-31T23:59:50Z", "end": "2026-12-31T23:59:55Z", "count": 6,
         "evidence": [ssh_fail(s, "203.0.113.9", "root") for s in range(50, 56)]},
        {"rule": "auth-failures-user", "severity": "high", "entity": "root", "entity_type": "user",
         "start": "2026-12-31T23:59:50Z", "end": "2026-12-31T23:59:55Z", "count": 6,
         "evidence": [ssh_fail(s, "203.0.113.9", "root") for s in range(50, 56)]},
        {"rule": "first-seen-ip", "severity": "medium", "entity": "alice", "entity_type": "user",
         "start": "2027-01-01T00:00:05Z", "end": "2027-01-01T00:00:05Z", "count": 1,
         "evidence": ["Jan  1 00:00:05 web1 sshd[300]: Accepted publickey for alice from 198.51.100.7 "
                      "port 5000 ssh2"]},
        {"rule": "http-404-scanning", "severity": "medium", "entity": "192.0.2.50", "entity_type": "ip",
         "start": "2027-01-01T00:01:00Z", "end": "2027-01-01T00:01:20Z", "count": 21,
         "evidence": nikto[:10]},
        {"rule": "gdpr-access-request", "severity": "low", "entity": "erin", "entity_type": "user",
         "start": "2027-01-01T00:02:00Z", "end": "2027-01-01T00:02:00Z", "count": 1,
         "evidence": ['{"ts": "2027-01-01T00:02:00Z", "event": "gdpr_access_request", "user": "erin", '
                      '"ip": "192.0.2.8"}']},
    ]
    assert err == (f"warning: {app}: 1 of 3 lines not readable as jsonl\n"
                   "    app.jsonl:2: not JSON: not json at all\n")


def test_no_alerts_exit_0_and_nothing_printed(tmp_path):
    auth = write(tmp_path / "auth.log", [ssh_fail(s, "203.0.113.9", "root") for s in range(5)])
    assert detect("--local", "--json", auth) == (0, [], "")


def test_errors_exit_2_but_other_files_still_read(tmp_path):
    junk = write(tmp_path / "junk.txt", ["hello", "world"])
    auth = write(tmp_path / "auth.log", [ssh_fail(s, "203.0.113.9", "root") for s in range(6)])
    code, alerts, err = detect("--local", "--json", junk, str(tmp_path / "missing.log"), auth)
    assert code == 2
    assert [a["rule"] for a in alerts] == ["auth-failures-ip", "auth-failures-user"]
    assert err.splitlines() == [
        f"error: {junk}: not a recognised log format (syslog auth.log, combined access log, JSON lines)",
        f"error: {tmp_path / 'missing.log'}: No such file or directory"]


def test_usage_errors_exit_2(tmp_path):
    auth = write(tmp_path / "auth.log", [ssh_fail(0, "203.0.113.9", "root")])
    code, _, err = detect("--json", auth)
    assert code == 2 and "give --local" in err
    bad = tmp_path / "b.json"
    bad.write_text('{"alice": ["not-an-ip"]}')
    code, _, err = detect("--local", "--json", "--baseline-ips", str(bad), auth)
    assert code == 2 and "'alice': not an IP address: 'not-an-ip'" in err
    bad.write_text("[1]")
    code, _, err = detect("--local", "--json", "--baseline-ips", str(bad), auth)
    assert code == 2 and "want an object" in err
    code, _, err = detect("--local", "--json", "--rules", str(tmp_path / "nope"), auth)
    assert code == 2 and "not a directory" in err


def test_rules_folder_tunes_and_reports_bad_files(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "tuning.yaml").write_text(
        "rules:\n"
        "  - id: auth-failures-user\n    enabled: false\n    severity: high\n    group_by: user\n"
        "    bucket: {type: counter, window: 300, threshold: 5}\n"
        "  - id: auth-failures-ip\n    severity: critical\n    group_by: ip\n"
        "    match: {action: login, success: false}\n"
        "    bucket: {type: counter, window: 300, threshold: 2}\n")
    (rules / "broken.yml").write_text("rules:\n  - id: y\n    severity: high\n")
    auth = write(tmp_path / "auth.log", [ssh_fail(s, "203.0.113.9", "root") for s in range(3)])
    code, alerts, err = detect("--local", "--json", "--rules", str(rules), auth)
    assert code == 1
    assert [(a["rule"], a["severity"], a["count"]) for a in alerts] == [("auth-failures-ip", "critical", 3)]
    assert err == (f"warning: rule skipped: {rules / 'broken.yml'}: rule 'y': "
                   "needs 'group_by' (the entity field)\n")
