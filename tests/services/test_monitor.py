"""Security events and alert rules against a real Redis (windows shared by processes)."""

from __future__ import annotations

import redis
from sqlalchemy import select

from secops.db.models import Alert, Job, SecurityEvent
from secops.db.session import session_scope
from secops.services import monitor
from secops.services.monitor import AlertRule, log_security_event


def event(kind: str, details: dict, kv, severity: str = "medium", **kw) -> monitor.EventOutcome:
    with session_scope() as s:
        return log_security_event(kind, details, severity, session=s, kv=kv, **kw)


def alerts() -> list[Alert]:
    with session_scope() as s:
        return list(s.scalars(select(Alert).order_by(Alert.first_seen_at)))


def test_auth_failure_thresholds_ip_key_and_burst(sqlite_env):
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    for _ in range(5):
        event("auth.failure", {"ip": "198.51.100.1", "key_prefix": "abcdefgh"}, kv)
    assert alerts() == []  # five is not more than five
    out = event("auth.failure", {"ip": "198.51.100.1", "key_prefix": "abcdefgh"}, kv)
    assert {a.rule for a in out.new_alerts} == {"auth.failures.ip", "auth.failures.key"}
    assert all(a.severity == "high" for a in out.new_alerts)
    for _ in range(5):
        event("auth.failure", {"ip": "198.51.100.1", "key_prefix": None}, kv)
    rules = {a.rule: a for a in alerts()}
    assert rules["auth.burst.ip"].severity == "critical"
    # grouped, not duplicated: one open alert per rule and subject
    assert len(alerts()) == 3
    assert rules["auth.failures.ip"].occurrences == 6
    # another IP has its own window
    assert event("auth.failure", {"ip": "198.51.100.2"}, kv).new_alerts == []
    with session_scope() as s:
        assert len(s.scalars(select(SecurityEvent)).all()) == 12


def test_rate_limit_flood_rule_and_sampled_storage(sqlite_env):
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    fired = []
    for n in range(1, 251):  # two and a half times the threshold of 100
        out = event("ratelimit.rejected", {"ip": "203.0.113.5"}, kv, "low",
                    sample_key="203.0.113.5")
        fired.extend((n, a.rule) for a in out.new_alerts)
    # fires on the 101st refusal, once: later ones add to the open alert
    assert fired == [(101, "ratelimit.flood.ip")]
    (alert,) = alerts()
    assert alert.severity == "high" and alert.occurrences == 150
    with session_scope() as s:
        assert len(s.scalars(select(SecurityEvent)).all()) == 1  # stored once a minute
    # the window holds at most threshold + 1 entries, however long the flood goes on
    keys = kv.keys("secops:aw:ratelimit.flood.ip:*")
    assert len(keys) == 1 and kv.zcard(keys[0]) == 101


def test_acknowledged_alert_lets_a_new_one_open(sqlite_env):
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    from secops.services import alerts as alert_service

    for _ in range(6):
        event("auth.failure", {"ip": "192.0.2.9"}, kv)
    first = alerts()[0]
    with session_scope() as s:
        alert_service.acknowledge(session=s, alert_id=first.id, actor="key:x")
    kv.delete(*kv.keys("secops:ag:*"))  # the creation gate would otherwise hold for the window
    out = event("auth.failure", {"ip": "192.0.2.9"}, kv)
    assert [a.rule for a in out.new_alerts] == ["auth.failures.ip"]
    assert out.new_alerts[0].id != first.id


def test_job_families_add_rules_and_webhook_jobs_are_created(sqlite_env, monkeypatch):
    from secops.config import get_settings

    monkeypatch.setenv("SECOPS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    get_settings.cache_clear()
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    rule = monitor.register_rule(AlertRule("scan.malware.host", frozenset({"scan.malware"}),
                                           "host", 0, 3600, "critical", "malware found"))
    try:
        out = event("scan.malware", {"host": "ws-17", "rule": "eicar"}, kv, "high")
        assert [a.rule for a in out.new_alerts] == [rule.name]
        assert len(out.deliveries) == 1 and out.deliveries[0][1] == "alerts.deliver"
        with session_scope() as s:
            job = s.get(Job, out.deliveries[0][0])
            assert job.params == {"alert_id": out.new_alerts[0].id}
            assert job.status == "queued"
    finally:
        monitor._extra_rules.pop(rule.name, None)


def test_without_redis_events_are_still_stored(sqlite_env):
    out = event("auth.failure", {"ip": "192.0.2.1"}, None)
    assert out.event_id is not None and out.new_alerts == []
