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
            name: dangling
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
            title: Chained to the dangling one
            correlation:
              type: event_count
              rules: [dangling]
              group-by: [c-ip]
              timespan: 1h
              condition: {gte: 2}
            """,
    })
    rules = RuleSet.load(folder, include_shipped=False)
    problems = sorted(rules.problems)
    assert len(problems) == 5, problems
    assert problems[0].startswith(f"{folder / 'broken.yml'}: ")
    assert problems[1].startswith(f"{folder / 'condition.yml'}: rule 'Bad condition': ")
    assert problems[2] == (f"{folder / 'corr.yml'}: correlation 'Chained to the dangling one': "
                           "referenced correlation 'dangling' could not be used")
    assert problems[3].startswith(f"{folder / 'corr.yml'}: correlation 'Dangling reference': ")
    assert problems[4].startswith(f"{folder / 'modifier.yml'}: ")
    assert "sideways" in problems[4]
    assert sorted(r.id for r in rules.enabled) == [
        "sigma:crash_keywords", "sigma:failed_login2", "sigma:scripted_admin", "sigma:webshell_upload"]


# The specification's own example of chained correlations ("Failed Logins Followed by
# Successful Login", Sigma correlation rules specification 2.0), as published.
SPEC_CHAIN = """\
title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
description: Detects multiple failed logins by a single user followed by a successful login of that user
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 528
            - 4624
    condition: selection
"""


def winlog(t, user, event_id):
    record = {"ts": T0 + t, "event": "logon", "User": user, "user": user, "EventID": event_id}
    return JsonLinesParser().parse(json.dumps(record))[0]


def test_a_correlation_of_a_correlation_the_specification_example(tmp_path):
    rules = sigma_only(tmp_path, **{"chain.yml": SPEC_CHAIN})
    assert rules.problems == []
    events = (
        [winlog(10 * i, "bob", 4625) for i in range(10)] + [winlog(200, "bob", 4624)]   # alert
        + [winlog(10 * i, "amy", 529) for i in range(9)] + [winlog(200, "amy", 528)]   # 9 only
        + [winlog(0, "cat", 4624)] + [winlog(10 + 10 * i, "cat", 4625) for i in range(10)]
        + [winlog(10 * i, "dan", 4625) for i in range(10)] + [winlog(800, "dan", 4624)]
    )
    events.sort(key=lambda e: e.ts)
    # bob: his tenth failure (t=90) makes the inner correlation fire; his login at t=200
    # follows within 10 minutes. cat's login came first, dan's 710 s after: no alert. The
    # rules referenced (failed_login, successful_login, multiple_failed_login) have no
    # 'generate: true': they raise nothing of their own.
    assert detect(rules, events) == [
        ("sigma:b180ead8-d58f-40b2-ae54-c8940995b9b6", "high", "user", "bob", 90.0, 200.0, 2, ())]


AGGREGATES = {
    "fewer": ("event_count", "{lt: 2}"),
    "at_most_one": ("event_count", "{lte: 1}"),
    "exactly_two": ("event_count", "{eq: 2}"),
    "not_four": ("event_count", "{neq: 4}"),
    "sum": ("value_sum", "{field: bytes, gte: 1000}"),
    "mean": ("value_avg", "{field: bytes, gt: 200}"),
    "p75": ("value_percentile", "{field: bytes, percentile: 75, gte: 320}"),
}


def test_counts_below_or_equal_to_a_bound_sums_means_and_percentiles(tmp_path):
    files = {"download.yml": """\
        title: Download
        name: download
        logsource: {category: application}
        detection:
          selection: {event: download}
          condition: selection
        """}
    for name, (kind, condition) in AGGREGATES.items():
        files[f"{name}.yml"] = f"""\
            title: {name}
            name: {name}
            level: low
            correlation:
              type: {kind}
              rules: [download]
              group-by: [user]
              timespan: 1h
              condition: {condition}
            """
    rules = sigma_only(tmp_path, **files)
    assert rules.problems == []
    hour = (T0 // 3600 + 1) * 3600 - T0   # windows are aligned on the timespan

    def dl(t, user, size):
        record = {"ts": T0 + hour + t, "event": "download", "user": user, "bytes": size}
        return JsonLinesParser().parse(json.dumps(record))[0]

    events = sorted([dl(10, "ann", 100), dl(20, "ann", 200), dl(30, "ann", 300), dl(40, "ann", 400),
                     dl(3600 + 5, "ann", 1000),
                     dl(50, "ben", 50), dl(7200 + 1, "ben", 10), dl(7200 + 2, "ben", 20)],
                    key=lambda e: e.ts)
    found = sorted((a[0].removeprefix("sigma:"), a[3], a[4] - hour, a[5] - hour, a[6])
                   for a in detect(rules, events) if a[0] != "sigma:download")
    # per user and hour: ann 4 downloads (100-400, sum 1000, mean 250, 75th percentile
    # 300 + 0.25 * 100 = 325), then 1 (1000); ben 1 (50), then 2 (10 and 20, sum 30)
    ann0, ann1 = ("ann", 10.0, 40.0, 4), ("ann", 3605.0, 3605.0, 1)
    ben0, ben2 = ("ben", 50.0, 50.0, 1), ("ben", 7201.0, 7202.0, 2)
    expected = {"fewer": [ann1, ben0], "at_most_one": [ann1, ben0], "exactly_two": [ben2],
                "not_four": [ann1, ben0, ben2], "sum": [ann0, ann1], "mean": [ann0, ann1],
                "p75": [ann0, ann1]}
    assert found == sorted((rule, *w) for rule, windows in expected.items() for w in windows)
