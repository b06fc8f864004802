"""The shortcuts of the local engine give exactly what the plain algorithms give."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from secops.anomaly import Detector, Event, RuleSet
from secops.anomaly.detector import Conditions
from secops.anomaly.reading import lines, merged, merged_blocks, open_log, open_log_blocks
from secops.anomaly.store import PENDING_CAP, MemoryStore, step_tally


def test_block_reading_splits_lines_like_the_stream():
    text = "a\nb\r\nc\rd\n\n  \nlast-without-end"
    stream = io.StringIO(text, newline="")
    expected = [ln.rstrip("\r\n") for ln in io.StringIO(text, newline="")]
    for block in (1, 2, 3, 5, 1 << 20):
        stream.seek(0)
        assert list(lines(stream, block)) == expected
    assert expected == ["a", "b", "c", "d", "", "  ", "last-without-end"]


@pytest.mark.parametrize(("conditions", "needs", "success_share"), [
    ([("distinct_user", ">=", 4), ("failures", ">=", 5), ("success_rate", "<=", 0.3)],
     (5, 5, 0), 0.2),
    # mostly successes: the window waits for its failures, then fires
    ([("distinct_user", ">=", 3), ("failures", ">=", 6), ("success_rate", "<=", 0.9)],
     (6, 6, 0), 0.85),
    ([("successes", ">", 3), ("count", ">=", 5), ("distinct_user", ">=", 2)], (5, 0, 4), 0.3),
    ([("failures", "==", 2), ("successes", ">=", 1)], (2, 2, 1), 0.5),
    ([("success_rate", "<=", 0.3)], (0, 0, 0), 0.2),   # one event can meet it: no waiting
])
def test_lazy_conditional_window_fires_as_the_plain_one(conditions, needs, success_share):
    check = Conditions(conditions)
    assert check.needs == needs
    r = random.Random(5)
    store, plain = MemoryStore(), {}
    fired_lazy, fired_plain = [], []
    ts = 0.0
    for i in range(6000):
        ts += r.expovariate(1 / 8)
        if i % 3 == 0:
            ts = float(int(ts))   # ties, as whole-second stamps give
        key = f"k{r.randrange(6)}"
        success = r.random() < success_share if r.random() > 0.05 else None
        values = {"user": f"u{r.randrange(8)}"}
        got = store.tally(key, ts, f"line {i}", 600, success, values, {"user": 10_000}, 3,
                          check)
        plain[key], want = step_tally(plain.get(key), ts, f"line {i}", 600, success, values,
                                      {"user": 10_000}, 3, check)
        fired_lazy.append(got)
        fired_plain.append(want)
    assert fired_lazy == fired_plain
    assert sum(f is not None for f in fired_plain) > 10   # the windows did fire


def test_a_window_of_successes_waits_for_failures():
    """Logins of one address that all succeed never make the window of a rule that needs
    failures; the first failures that can meet it replay the events kept (evidence and
    distinct users included)."""
    check = Conditions([("distinct_user", ">=", 3), ("failures", ">=", 3),
                        ("success_rate", "<=", 0.5)])
    store = MemoryStore()
    for i in range(200):
        got = store.tally("ip", 1000.0 + i, f"ok {i}", 600, True, {"user": f"u{i % 4}"},
                          {"user": 4}, 3, check)
        assert got is None
        assert type(store._state["ip"]) is list
    fired = []
    for i in range(400):   # failures at last: the rate falls to a half after 400 of them
        got = store.tally("ip", 1200.0 + i, f"bad {i}", 600, False, {"user": "root"},
                          {"user": 4}, 3, check)
        if got is not None:
            fired.append((i, got))
    want = None
    state = None
    for i in range(200):
        state, _ = step_tally(state, 1000.0 + i, f"ok {i}", 600, True, {"user": f"u{i % 4}"},
                              {"user": 4}, 3, check)
    for i in range(400):
        state, got = step_tally(state, 1200.0 + i, f"bad {i}", 600, False, {"user": "root"},
                                {"user": 4}, 3, check)
        if got is not None and want is None:
            want = (i, got)
    assert want is not None
    assert fired[0] == want
    assert fired[0][1].items == [f"bad {want[0] - 2}", f"bad {want[0] - 1}", f"bad {want[0]}"]


def test_a_busy_window_of_successes_becomes_the_window():
    """Events kept while the conditions cannot hold are bounded: past PENDING_CAP the
    window is built from them (and still gives what the plain window gives)."""
    check = Conditions([("failures", ">=", 5), ("success_rate", "<=", 0.5)])
    store, state = MemoryStore(), None
    lazy, plain = [], []
    for i in range(PENDING_CAP + 600):
        success = i < PENDING_CAP + 100   # successes, then failures only
        lazy.append(store.tally("svc", 5000.0 + i, f"l{i}", 3600, success, {}, {}, 3, check))
        state, want = step_tally(state, 5000.0 + i, f"l{i}", 3600, success, {}, {}, 3, check)
        plain.append(want)
        if i == PENDING_CAP - 2:
            assert type(store._state["svc"]) is list
        if i == PENDING_CAP - 1:
            assert type(store._state["svc"]) is dict
    assert lazy == plain
    first = next(i for i, f in enumerate(plain) if f is not None)
    assert first == PENDING_CAP + 100 + (PENDING_CAP + 100) - 1   # failures reach half


# -- the local fast path of the detector (counter, conditional and baseline rules) ----------

T0 = 1_796_600_000.0

TIGHT = """\
rules:
  - id: tight-failures
    title: t
    severity: high
    match: {action: login, success: false}
    group_by: ip
    bucket: {type: counter, window: 30, threshold: 2}
    incident_gap: 4
  - id: tight-failures-wide
    title: t
    severity: critical
    match: {action: login, success: false}
    group_by: ip
    bucket: {type: counter, window: 120, threshold: 4}
    supersedes: [auth-failures-ip]
  - id: tight-rate
    title: t
    severity: medium
    match: {action: request}
    group_by: ip
    bucket: {type: baseline, interval: 60, alpha: 0.5, z: 0.5, ratio: 1.5, min_value: 3,
             min_history: 2}
    incident_gap: 45
  - id: tight-volume
    title: t
    severity: high
    match: {action: [download, request]}
    group_by: user
    bucket: {type: baseline, sum: bytes, interval: 120, z: 1, ratio: 1.2, min_value: 10,
             min_history: 1}
  - id: tight-floor
    title: t
    severity: low
    match: {action: download}
    group_by: ip
    bucket: {type: baseline, interval: 60, z: 0.01, ratio: 0.01, min_value: 2, min_history: 1}
  - id: tight-spraying
    title: t
    severity: high
    match: {action: login}
    group_by: user
    bucket:
      type: conditional
      window: 120
      conditions: [[distinct_ip, ">=", 2], [failures, ">=", 2], [success_rate, "<=", 0.5]]
    incident_gap: 60
  - id: tight-rate-only
    title: t
    severity: low
    match: {action: login}
    group_by: endpoint
    bucket: {type: conditional, window: 90, conditions: [[success_rate, "<=", 0.4]]}
  - id: tight-extra-field
    title: t
    severity: low
    match: {action: [login, request]}
    group_by: host
    entity_type: endpoint
    bucket: {type: conditional, window: 200, conditions: [[distinct_agent, ">", 2], [count, ">=", 4]]}
  - id: tight-not-failed
    title: t
    severity: low
    match: [{action: login, success: [true, null]}, {action: sudo, success: {not: [true]}}]
    group_by: user
    bucket: {type: counter, window: 60, threshold: 3}
"""


def varied_events(seed: int, n: int) -> list[Event]:
    """Logins, requests, downloads and sudo lines over few entities, with bursts, long idle
    gaps (windows forgotten), lines out of order and odd field values; for odd seeds, times
    in whole seconds (as logs write them: ties, gaps exactly a window long)."""
    r = random.Random(seed)
    whole = seed % 2 == 1
    ips = [f"192.0.2.{i}" for i in range(1, 9)] + ["2001:db8::7"]
    users = ["root", "alice", "bob", "carol", "", "dave"]
    events = []
    ts = T0
    for i in range(n):
        roll = r.random()
        if roll < 0.002:
            ts += r.choice((4000.0, 9000.0, 200_000.0))   # beyond windows and baselines
        elif roll < 0.05:
            ts -= r.uniform(0, 20)                        # out of order
        else:
            ts += r.expovariate(1 / (0.2 if r.random() < 0.3 else 6.0))
        if whole:
            ts = float(int(ts))
        raw = f"line {i} " + "x" * r.choice((0, 0, 0, 600))
        kind = r.random()
        if kind < 0.45:
            success = r.choice((False, False, False, True, None))
            extra = {"invalid_user": True} if r.random() < 0.1 else {}
            if r.random() < 0.3:
                extra["agent"] = r.choice(("curl", "wget", "go", ""))
            events.append(Event(ts, "login", raw, "auth", success=success, ip=r.choice(ips),
                                user=r.choice(users), host=r.choice(("web1", "db1", None)),
                                service=r.choice(("sshd", "portal")), extra=extra))
        elif kind < 0.8:
            events.append(Event(ts, "request", raw, "http", ip=r.choice(ips[:4]),
                                user=r.choice(users + [None]), method="GET",
                                path=r.choice(("/", "/a", "/b", f"/p{i % 40}")),
                                status=r.choice((200, 200, 404, 429, 500)),
                                bytes=r.choice((10, 500, 4000, None)), host="web1",
                                extra={"agent": r.choice(("curl", "ff", "chrome", "go"))}))
        elif kind < 0.95:
            size = r.choice((100, 5000, 90_000, True, "12", None, 2.5))
            events.append(Event(ts, "download", raw, "json", ip=r.choice(ips), user=r.choice(users),
                                bytes=size, extra={"file": "f"}))   # type: ignore[arg-type]
        else:
            events.append(Event(ts, "sudo", raw, "auth", success=r.random() < 0.5,
                                user=r.choice(users), host="db1", service="sudo"))
    return events


def both_paths(rules, events, **kw):
    """(alerts, alerts as they opened) of the fast and of the general detector."""
    out = []
    for fast in (True, False):
        detector = Detector(rules, fast=fast, **kw)
        detector.feed_all(events)
        opened = list(detector.opened)
        out.append((detector.finish(), opened))
    return out


def test_fast_detector_gives_the_alerts_of_the_general_one_on_varied_events():
    from secops.anomaly.rules import rules_from_text

    rules = RuleSet(RuleSet.shipped().rules + rules_from_text(TIGHT, "tight.yaml"))
    fired: set[str] = set()
    for seed in range(4):
        events = varied_events(seed, 6000)
        for limit in (10, 3):
            fast, general = both_paths(rules, events, evidence_limit=limit,
                                       baseline_ips={"alice": ["192.0.2.1"], "root": []})
            assert fast == general
            fired.update(a.rule for a in fast[0])
    # every specialised bucket type fired, and so did the rules around them
    assert {"tight-failures", "tight-failures-wide", "tight-rate", "tight-volume", "tight-floor",
            "tight-spraying", "tight-rate-only", "tight-extra-field", "tight-not-failed",
            "auth-failures-user", "first-seen-ip"} <= fired


def test_fast_detector_gives_the_alerts_of_the_general_one_on_simulated_days(tmp_path):
    from tests.anomaly.logsim import simulate

    day = simulate(5, history_days=1)
    paths = day.write(tmp_path)
    events = list(merged(open_log(Path(p))[1] for p in paths))
    fast, general = both_paths(RuleSet.shipped(), events, baseline_ips=day.baseline)
    assert fast == general
    assert {"password-spraying", "credential-stuffing", "download-volume-spike",
            "endpoint-request-spike", "rare-error-template", "secret-in-log"} <= {
        a.rule for a in fast[0]}
    # as the local command reads them: a list at a time, light requests included
    detector = Detector(RuleSet.shipped(), baseline_ips=day.baseline)
    detector.feed_blocks(merged_blocks(open_log_blocks(Path(p), light=detector.light_plan)[1]
                                       for p in paths))
    assert detector.finish() == fast[0]


def test_fast_detector_gives_the_alerts_of_the_general_one_with_sigma_correlations(tmp_path):
    from tests.anomaly.test_sigma import SPEC_CHAIN, sigma_only, winlog

    rules = sigma_only(tmp_path, **{"chain.yml": SPEC_CHAIN})
    r = random.Random(3)
    events = sorted((winlog(t, r.choice(("bob", "amy", "cat")), r.choice((4625, 4625, 529, 4624)))
                     for t in sorted(r.uniform(0, 20_000) for _ in range(3000))),
                    key=lambda e: e.ts)
    fast, general = both_paths(rules, events)
    assert fast == general
    assert len(fast[0]) >= 3


def test_json_lines_decode_as_the_standard_decoder():
    import json

    from secops.anomaly.parsers import _loads

    decode = json.JSONDecoder().decode

    def outcome(read, text):
        try:
            return "value", read(text)
        except ValueError as exc:
            return type(exc).__name__, str(exc)

    r = random.Random(11)
    alphabet = '{}[]",:0123456789 \t\n\rabtrufalsenNI.-eE\\'
    texts = ['{"a": 1}', ' {"a": 1} ', '\t{"a":1}\n', "", " ", '{"a": 1} x', '{"a": 1}{}',
             "[1,2]", '"s"', "nul", '{"a": NaN}', '{"a": 1', "1 2", '\u00a0{"a":1}', "true"]
    texts += ["".join(r.choice(alphabet) for _ in range(r.randint(0, 12))) for _ in range(20000)]
    got = [outcome(_loads, t) for t in texts]
    assert got == [outcome(decode, t) for t in texts]
    assert sum(kind == "value" for kind, _ in got) > 100   # not only errors


CONDITIONAL_ON_CORRELATIONS = """\
rules:
  - id: spray-with-correlations
    title: Failures from one address across users, correlation events included
    severity: high
    match: {success: false}
    group_by: user
    bucket:
      type: conditional
      window: 600
      conditions: [[count, ">=", 4], [distinct_ip, ">=", 2]]
"""

BURSTS_OF_BURSTS = """\
title: Failed logons
id: 0f4b8f0e-1d2c-4c55-9a36-6c1e4a8d2b10
name: failed_logon
logsource: {product: windows, service: security}
detection:
    selection:
        EventID: 4625
    condition: selection
---
title: Three failed logons of one user
id: 9b0e2d47-5f1a-4a8e-8d7c-2f3b6a1c9e42
name: many_failed
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [User]
    timespan: 10m
    condition: {gte: 3}
---
title: Two bursts of one user
id: 3c7d9a15-8e2b-4f60-b1a4-7e5c0d2f8a93
name: bursts
correlation:
    type: event_count
    rules: [many_failed]
    group-by: [User]
    timespan: 1h
    condition: {gte: 2}
level: high
"""


def test_a_conditional_rule_also_fed_correlation_events_steps_one_window_layout(tmp_path):
    """A correlation's derived event reaches the other rules through each rule's own step,
    so a conditional window is never stepped by both the fast and the general code."""
    import json

    from secops.anomaly.parsers import JsonLinesParser
    from tests.anomaly.test_sigma import T0, write_rules

    folder = write_rules(tmp_path / "rules", **{"user.yaml": CONDITIONAL_ON_CORRELATIONS,
                                                "bursts.yml": BURSTS_OF_BURSTS})
    rules = RuleSet.load(folder, include_shipped=False)
    assert rules.problems == []
    events = []
    for i in range(12):   # one user failing from two addresses, 20 s apart
        record = {"ts": T0 + 20 * i, "event": "logon", "User": "bob", "user": "bob",
                  "ip": f"198.51.100.{i % 2 + 1}", "EventID": 4625, "success": False}
        events.append(JsonLinesParser().parse(json.dumps(record))[0])
    fast, general = both_paths(rules, events)
    assert fast == general
    fired = {a.rule for a in fast[0]}
    assert {"spray-with-correlations", "sigma:bursts"} <= fired


def test_merge_gives_the_library_merge_order_ties_included():
    import heapq

    from secops.anomaly.reading import merged, merged_blocks

    def when(item):
        return item[0] if isinstance(item, tuple) else item.ts

    r = random.Random(11)
    checked = 0
    for _ in range(300):
        streams = []
        for s in range(r.randint(0, 6)):
            ts, items = T0, []
            for i in range(r.choice((0, 1, 2, 30))):
                ts += r.choice((0.0, 0.0, 1.0, 0.5))   # ties within and across streams
                if r.random() < 0.5:
                    items.append((ts, f"/p{s}", f"s{s} line {i}", (), 0, f"f{s}"))
                else:
                    items.append(Event(ts, "login", f"s{s} event {i}", "auth"))
            if r.random() < 0.2:   # a stream out of order
                r.shuffle(items)
            streams.append(items)
        want = list(heapq.merge(*(iter(items) for items in streams), key=when))
        got = list(merged(iter(items) for items in streams))
        assert [id(x) for x in got] == [id(x) for x in want]
        # the same streams a list at a time, cut at random places (empty lists too)
        cut = [split(r, items) for items in streams]
        copies = [[list(block) for block in blocks] for blocks in cut]
        out = list(merged_blocks(iter(blocks) for blocks in cut))
        assert [id(x) for block in out for x in block] == [id(x) for x in want]
        assert all(out) and cut == copies   # no empty list given, none of the streams' changed
        assert len(got) == sum(len(items) for items in streams)
        checked += len(got)
    assert checked > 5_000
    # streams longer than a list of merged_blocks, in blocks of a reader's size
    streams = [[(T0 + k // (s + 1), f"/p{s}", "", (), 0, "") for k in range(6_000)]
               for s in range(3)]
    want = list(heapq.merge(*(iter(items) for items in streams), key=when))
    out = list(merged_blocks(iter([items[i:i + 1000] for i in range(0, 6_000, 1000)])
                             for items in streams))
    assert [id(x) for block in out for x in block] == [id(x) for x in want]
    assert len(out) > 4


def test_block_merge_hands_out_a_file_hours_ahead_a_list_at_a_time():
    from secops.anomaly.reading import merged_blocks

    old = [[Event(T0 + b * 100 + i, "login", f"old {b} {i}", "auth") for i in range(100)]
           for b in range(50)]   # yesterday's rotated log, read before today's
    new = [[(T0 + 86_400 + b * 100 + i, "/", f"new {b} {i}", (), 0, "a") for i in range(100)]
           for b in range(50)]
    sizes = []
    order = []
    for out in merged_blocks([iter(old), iter(new)]):
        sizes.append(len(out))
        order.extend(out)
    assert order == [e for block in old for e in block] + [t for block in new for t in block]
    assert max(sizes) == 100   # a list of a file at the most, never the whole run


def split(r, items):
    blocks, start = [], 0
    while start < len(items) or r.random() < 0.2:
        end = start + r.choice((0, 1, 2, 5, 40))
        blocks.append(items[start:end])
        start = end
    return blocks


def test_feeding_makes_no_reference_cycles(tmp_path):
    """What ``freeze_gc`` relies on: the objects the fast path leaves behind as it feeds
    are freed by their reference counts, none waits for the cycle collector."""
    import gc
    from pathlib import Path

    from secops.anomaly.reading import merged, open_log
    from tests.anomaly.logsim import simulate

    day = simulate(7, history_days=1)
    paths = day.write(tmp_path)
    detector = Detector(baseline_ips=day.baseline, freeze_gc=True)
    streams = [open_log(Path(path), light=detector.light_plan)[1] for path in paths]
    gc.collect()
    gc.disable()
    try:
        detector.feed_all(merged(streams))
        before = detector.events
        alerts = detector.finish()
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert before > 10_000 and alerts
    assert cyclic < 50, cyclic


def test_release_forgets_the_windows_of_a_finished_detector():
    from secops.anomaly.store import MemoryStore

    detector = Detector(baseline_ips={"alice": ["192.0.2.1"]})
    detector.feed_all(varied_events(2, 3000))
    alerts = detector.finish()
    store = detector.store
    assert isinstance(store, MemoryStore)
    assert alerts and len(store) > 10 and store._touched and store._seen
    detector.release()
    assert len(store) == 0 and not store._touched and not store._seen
    assert not list(store.open_incidents())
