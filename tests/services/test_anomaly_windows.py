"""The anomaly windows in a real Redis: the same results as in memory, shared by detectors."""

from __future__ import annotations

import threading

import pytest
import redis

from secops.anomaly import Detector, Event, MemoryStore, RuleSet
from secops.services.anomaly import RedisTemplateState
from secops.services.anomaly_windows import RedisWindowStore

T0 = 1_796_600_000.0


@pytest.fixture
def kv(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.flushdb()


def fail(t, ip="203.0.113.9", user="root"):
    return Event(T0 + t, "login", f"fail {user} {ip} {t}", "auth", success=False, ip=ip, user=user,
                 host="web1", service="sshd")


def summary(alerts):
    return [(a.rule, a.entity_type, a.entity, a.start, a.end, a.count, a.evidence) for a in alerts]


def test_two_detectors_sharing_redis_see_one_window(kv):
    """Two workers each read half of an attack (two files of one host): one alert."""
    rules = [r for r in RuleSet.shipped().rules if r.id == "auth-failures-ip"]
    one, two = (Detector(rules, store=RedisWindowStore(kv)) for _ in range(2))
    for i in range(12):   # alternate: neither detector alone sees more than 6 in 5 minutes
        (one if i % 2 else two).feed(fail(i * 20))
    opened = one.take_opened() + two.take_opened()
    assert [(a.rule, a.entity, a.count) for a in opened] == [("auth-failures-ip", "203.0.113.9", 6)]
    closed = one.take_closed(T0 + 3600) + two.take_closed(T0 + 3600)
    assert [(a.entity, a.start - T0, a.end - T0, a.count) for a in closed] == [
        ("203.0.113.9", 0, 220, 12)]
    assert kv.hlen("secops:an:incidents") == 0


def mixed_events():
    """Every kind of window: counters, leaky, distinct, conditional, first seen, baseline."""
    ev = [fail(i * 7) for i in range(15)]   # counters (9 a minute: not the fast rule)
    ev += [fail(100 + i * 40, ip="198.51.100.66", user=f"user{i}") for i in range(12)]  # spraying
    ev += [Event(T0 + 50 + i * 10, "sudo", f"sudo fail {i}", "auth", success=False, user="bob",
                 host="db1", service="sudo") for i in range(5)]                  # leaky
    ev += [Event(T0 + 200 + i, "request", f"GET /p{i} 404", "http", ip="192.0.2.50",
                 path=f"/p{i}", status=404) for i in range(25)]                  # distinct
    ev += [Event(T0 + 300, "login", "ok alice", "json", success=True, user="alice",
                 ip="203.0.113.200")]                                            # first seen
    ev += [Event(T0 + h * 3600 + k, "download", f"dl {h} {k}", "json", user="gus",
                 bytes=5_000_000 if h < 6 else 150_000_000) for h in range(8) for k in range(3)]
    return sorted(ev, key=lambda e: e.ts)


def test_same_alerts_as_in_memory(kv):
    results = []
    for store in (MemoryStore(), RedisWindowStore(kv)):
        detector = Detector(store=store, baseline_ips={"alice": ["192.0.2.1"]})
        detector.feed_all(mixed_events())
        results.append(summary(detector.finish()))
    assert results[0] == results[1]
    assert sorted({r[0] for r in results[0]}) == [
        "auth-failures-ip", "auth-failures-user", "download-volume-spike", "first-seen-ip",
        "http-404-scanning", "password-spraying", "sudo-failure-burst"]


def test_concurrent_updates_of_one_window_lose_nothing(kv):
    store = RedisWindowStore(kv)
    fired = []

    def hammer(n):
        for i in range(50):
            got = store.counter("rule\x1fip", T0 + i, f"w{n} {i}", 3600, 199)
            if got is not None:
                fired.append(got)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [f.count for f in fired] == [200]   # the 200th hit of four writers fires, once


def test_first_seen_and_incident_bookkeeping(kv):
    store = RedisWindowStore(kv)
    assert store.first_seen("k", "192.0.2.1") is None      # no baseline: not judged
    store.remember("k", ["192.0.2.1"])
    assert store.first_seen("k", "192.0.2.1") is False
    assert store.first_seen("k", "192.0.2.2") is True
    assert store.first_seen("k", "192.0.2.2") is False     # learnt
    assert store.hours("h", 3) == (0, 0) and store.hours("h", 4) == (1 << 3, 1)


def test_two_workers_feeding_chunks_at_once_share_the_windows(kv):
    """Two detectors in two threads, each with half of an attack, fed in chunks at the same
    time (the way jobs feed a shared store): one incident per entity with every event."""
    rules = [r for r in RuleSet.shipped().rules if r.id in ("auth-failures-ip", "auth-failures-user")]
    events = [fail(i * 20, user="deploy") for i in range(12)]
    detectors = [Detector(rules, store=RedisWindowStore(kv)) for _ in range(2)]
    threads = [threading.Thread(target=d.feed_all, args=(events[n::2],))
               for n, d in enumerate(detectors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    opened = sorted((a.rule, a.entity) for d in detectors for a in d.take_opened())
    assert opened == [("auth-failures-ip", "203.0.113.9"), ("auth-failures-user", "deploy")]
    closed = [a for d in detectors for a in d.take_closed(T0 + 3600)]
    assert sorted((a.rule, a.count) for a in closed) == [("auth-failures-ip", 12),
                                                        ("auth-failures-user", 12)]


@pytest.mark.parametrize("feeding", ["one event at a time", "one batch per event"])
def test_workers_extending_one_incident_at_once_lose_no_count(kv, feeding):
    """Four workers extend one open incident at the same instant: every event counts."""
    rules = [r for r in RuleSet.shipped().rules if r.id == "auth-failures-ip"]
    opener = Detector(rules, store=RedisWindowStore(kv))
    opener.feed_all([fail(i) for i in range(6)])              # more than 5 in 5 min: opens
    assert [(a.rule, a.count) for a in opener.take_opened()] == [("auth-failures-ip", 6)]
    workers = [Detector(rules, store=RedisWindowStore(kv)) for _ in range(4)]

    def extend(n):
        for i in range(40):
            event = fail(10 + i * 4 + n)
            if feeding == "one event at a time":
                workers[n].feed(event)
            else:
                workers[n].feed_all([event])

    threads = [threading.Thread(target=extend, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    closed = opener.take_closed(T0 + 3600)
    assert [(a.rule, a.count, a.start - T0, a.end - T0) for a in closed] == [
        ("auth-failures-ip", 6 + 4 * 40, 0, 10 + 39 * 4 + 3)]
    assert len(closed[0].evidence) == 10


def test_a_failed_attempt_learns_no_first_seen_value_and_no_template(kv):
    """An attempt that fails half-way through a chunk must not keep what the chunk learnt:
    its retry still finds the new address and the new kind of error."""
    rules = [r for r in RuleSet.shipped().rules if r.id in ("first-seen-ip", "rare-error-template")]

    def error(t, text):
        return Event(T0 + t, "app_error", f"{t} {text}", "json", level="error", service="portal",
                     host="app1", extra={"message": text})

    events = [error(0, "connection reset by peer"),                       # learning starts
              Event(T0 + 10, "login", "alice from a new address", "json", success=True,
                    user="alice", ip="203.0.113.200"),
              error(7200, "disk quota exceeded on volume data")]          # past learning: new

    def attempt(stream):
        store = RedisWindowStore(kv, job="job-1")
        detector = Detector(rules, store=store, baseline_ips={"alice": ["198.51.100.7"]},
                            template_state=lambda rule_id: RedisTemplateState(kv, rule_id, store))
        detector.feed_all(stream)
        return sorted((a.rule, a.entity) for a in detector.take_opened())

    broken = Event(None, "login", "a line the engine cannot take", "json")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        attempt(events + [broken])
    assert attempt(events) == [("first-seen-ip", "alice"), ("rare-error-template", "portal@app1")]
    # a third attempt finds the chunk counted and takes its alerts back from its marker
    assert attempt(events) == [("first-seen-ip", "alice"), ("rare-error-template", "portal@app1")]
