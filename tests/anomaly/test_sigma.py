"""Sigma rules (parsed by pySigma) evaluated by the engine, correlations included."""

from __future__ import annotations

import json
import textwrap

from secops.anomaly import Detector, Event, RuleSet
from secops.anomaly.parsers import CombinedParser, JsonLinesParser

T0 = 1_796_600_000.0

WEB = """\
title: Web shell in an upload folder
name: webshell_upload
status: test
level: high
tags: [attack.persistence, attack.t1505.003]
logsource: {category: webserver}
detection:
  selection_path:
    cs-uri-stem|endswith: ['.php', '.jsp']
    cs-uri-stem|contains: '/uploads/'
  selection_status:
    sc-status: 200
  filter_lan:
    c-ip|cidr: 10.0.0.0/8
  condition: all of selection_* and not filter_lan
---
title: Crash keywords
name: crash_keywords
level: informational
logsource: {product: linux}
detection:
  keywords: ['segfault at', 'Out of memory*Killed']
  condition: keywords
---
title: Scripted client on the admin API
name: scripted_admin
level: medium
logsource: {category: webserver}
detection:
  ua_tools:
    cs-user-agent|startswith: ['curl/', 'python-requests/']
  ua_regex:
    cs-user-agent|re: '^Go-http-client/\\d'
  admin:
    cs-uri-stem|startswith: /admin/
  condition: 1 of ua_* and admin
"""

CORRELATIONS = """\
title: Failed login
name: failed_login
logsource: {category: authentication}
detection:
  selection: {event: login, success: false}
  condition: selection
---
title: Successful login
name: good_login
logsource: {category: authentication}
detection:
  selection: {event: login, success: true}
  condition: selection
---
title: Not found
name: not_found
logsource: {category: webserver}
detection:
  selection: {sc-status: 404}
  condition: selection
---
title: Many failed logins from one address
name: many_failed
level: high
tags: [attack.t1110]
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [src_ip]
  timespan: 2m
  condition: {gte: 3}
---
title: Many missing paths from one address
name: many_missing
level: medium
correlation:
  type: value_count
  rules: [not_found]
  group-by: [c-ip]
  timespan: 1m
  condition: {field: cs-uri-stem, gte: 4}
---
title: Failed then successful login for one account
name: fail_then_success
level: critical
correlation:
  type: temporal_ordered
  rules: [failed_login, good_login]
  group-by: [user]
  timespan: 5m
"""


def write_rules(folder, **files):
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def http(t, path, status, ip="192.0.2.7", agent="Mozilla/5.0"):
    line = f'{ip} - - [07/Dec/2026:00:00:00 +0000] "GET {path} HTTP/1.1" {status} 10 "-" "{agent}"'
    event = CombinedParser().parse(line)[0]
    event.ts = T0 + t
    return event


def login(t, user, ip, success):
    record = {"ts": T0 + t, "event": "login", "user": user, "ip": ip, "success": success}
    return JsonLinesParser().parse(json.dumps(record))[0]


def detect(rules, events):
    detector = Detector(rules)
    detector.feed_all(events)
    return [(a.rule, a.severity, a.entity_type, a.entity, a.start - T0, a.end - T0, a.count, a.mitre)
            for a in detector.finish()]


def sigma_only(tmp_path, **files):
    rules = RuleSet.load(write_rules(tmp_path / "rules", **files), include_shipped=False)
    return rules


def test_field_and_keyword_selections_with_modifiers(tmp_path):
    rules = sigma_only(tmp_path, **{"web.yml": WEB})
    assert rules.problems == []
    events = [
        http(0, "/wp/uploads/shell.php", 200),                      # web shell
        http(1, "/wp/uploads/shell.php", 200, ip="10.1.2.3"),       # from the LAN: filtered out
        http(2, "/wp/uploads/shell.php", 404),                      # not served
        http(3, "/wp/uploads/photo.png", 200),                      # not a script
        http(4, "/admin/users", 200, agent="curl/8.5.0"),
        http(5, "/admin/users", 200, agent="Go-http-client/1.1"),
        http(6, "/admin/users", 200, agent="Mozilla/5.0"),
        http(7, "/public", 200, agent="curl/8.5.0"),
        Event(T0 + 8, "other", "Dec  7 00:00:08 web1 kernel: app[5]: SEGFAULT AT 0 ip 0", "auth",
              host="web1", service="kernel"),
        Event(T0 + 9, "other", "Dec  7 00:00:09 web1 kernel: Out of memory: Killed process 77 (java)",
              "auth", host="web1", service="kernel"),
    ]
    assert detect(rules, events) == [
        ("sigma:webshell_upload", "high", "ip", "192.0.2.7", 0, 0, 1, ("T1505.003",)),
        ("sigma:scripted_admin", "medium", "ip", "192.0.2.7", 4, 5, 2, ()),
        ("sigma:crash_keywords", "low", "endpoint", "kernel@web1", 8, 9, 2, ()),
    ]


def test_correlations_event_count_value_count_and_temporal(tmp_path):
    rules = sigma_only(tmp_path, **{"corr.yml": CORRELATIONS})
    assert rules.problems == []
    # referenced rules do not alert on their own (generate is false)
    assert sorted(r.id for r in rules.enabled) == ["sigma:fail_then_success", "sigma:many_failed",
                                                   "sigma:many_missing"]
    events = [
        login(0, "ann", "203.0.113.5", False), login(30, "bob", "203.0.113.5", False),
        login(60, "cat", "203.0.113.5", False),                     # 3 in 2 min: event_count
        login(200, "dan", "198.51.100.9", False), login(400, "dan", "198.51.100.9", False),
        login(620, "dan", "198.51.100.9", False),                   # 3, but never within 2 min
        login(650, "dan", "198.51.100.9", True),                    # fail then success within 5 min
        login(700, "eve", "192.0.2.44", True), login(710, "eve", "192.0.2.44", False),  # wrong order
        http(1000, "/a", 404), http(1010, "/b", 404), http(1020, "/a", 404), http(1030, "/c", 404),
        http(1040, "/d", 404),                                      # 4 distinct paths within 1 min
        http(2000, "/a", 404, ip="192.0.2.8"), http(2030, "/b", 404, ip="192.0.2.8"),
        http(2070, "/c", 404, ip="192.0.2.8"), http(2100, "/d", 404, ip="192.0.2.8"),  # spread out
    ]
    got = detect(rules, events)
    assert got == [
        ("sigma:many_failed", "high", "ip", "203.0.113.5", 0, 60, 3, ("T1110",)),
        ("sigma:fail_then_success", "critical", "user", "dan", 620, 650, 2, ()),
        # four distinct paths; the span starts at the oldest path's latest request (/a again at 1020)
        ("sigma:many_missing", "medium", "ip", "192.0.2.7", 1010, 1040, 4, ()),
    ]


def test_bad_sigma_files_are_reported_and_skipped(tmp_path):
    folder = write_rules(tmp_path / "rules", **{
        "good.yml": WEB,
        "broken.yml": "title: x\ndetection: [\n",
        "modifier.yml": """\
            title: Unknown modifier
            logsource: {category: webserver}
            detection:
              sel: {cs-uri-stem|sideways: x}
              condition: sel
            """,
        "condition.yml": """\
            title: Bad condition
            logsource: {category: webserver}
            detection:
              sel: {cs-uri-stem: x}
              condition: sel and nothing
            """,
        "corr.yml": """\
            title: Dangling reference
            correlation:
              type: event_count
              rules: [no_such_rule]
              group-by: [c-ip]
              timespan: 1m
              condition: {gte: 2}
            ---
            title: Failed login
            name: failed_login2
            logsource: {category: authentication}
            detection:
              selection: {event: login, success: false}
              condition: selection
            ---
            title: Quiet account
            correlation:
              type: event_count
              rules: [failed_login2]
              group-by: [user]
              timespan: 1h
              condition: {lt: 2}
            """,
    })
    rules = RuleSet.load(folder, include_shipped=False)
    problems = sorted(rules.problems)
    assert len(problems) == 5, problems
    assert problems[0].startswith(f"{folder / 'broken.yml'}: ")
    assert problems[1].startswith(f"{folder / 'condition.yml'}: rule 'Bad condition': ")
    assert problems[2].startswith(f"{folder / 'corr.yml'}: correlation 'Dangling reference': ")
    assert problems[3] == (f"{folder / 'corr.yml'}: correlation 'Quiet account': only 'gte' and 'gt' "
                           "count conditions are supported (a count below a bound needs the window "
                           "to close)")
    assert problems[4].startswith(f"{folder / 'modifier.yml'}: ")
    assert "sideways" in problems[4]
    assert sorted(r.id for r in rules.enabled) == [
        "sigma:crash_keywords", "sigma:failed_login2", "sigma:scripted_admin", "sigma:webshell_upload"]
