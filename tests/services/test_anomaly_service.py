"""anomaly.ingest runs (without the worker): files, own events, batches, alerts, sampling."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import redis
from sqlalchemy import select

from secops.config import get_settings
from secops.db.models import Alert, AnomalyBaseline, AnomalyBatch, AnomalyCheckpoint, Job, SecurityEvent
from secops.db.session import session_scope
from secops.services import anomaly, monitor
from secops.services.jobs import create_job
from secops.services.metrics import ANOMALY_SAMPLED_KEY

WHEN = datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp()


def ssh_fail(sec, ip="203.0.113.9", minute=0):
    return (f"Dec  7 10:{minute:02d}:{sec:02d} web1 sshd[{100 + sec}]: Failed password for root from {ip} "
            f"port {4000 + sec} ssh2\n")


def configure(monkeypatch, **values):
    for key, value in values.items():
        monkeypatch.setenv(f"SECOPS_{key.upper()}", value)
    get_settings.cache_clear()


def run(kv, params=None, now=WHEN + 60):
    with session_scope() as session:
        job = create_job(session=session, kind="anomaly.ingest", params=params or {},
                         submitted_by="test")
        session.flush()
        summary, _ = anomaly.run_job(session=session, kv=kv, job=job, settings=get_settings(),
                                     now=now)
    return summary


def alerts():
    with session_scope() as session:
        rows = session.scalars(select(Alert).where(Alert.rule.like("anomaly.%"))
                               .order_by(Alert.first_seen_at)).all()
        return [(a.rule, a.subject, a.severity, a.occurrences, a.details.get("count"),
                 a.details.get("closed", False)) for a in rows]


def write(path, text, mtime=WHEN + 30):
    with path.open("a") as fh:
        fh.write(text)
    os.utime(path, (mtime, mtime))


def test_log_files_are_read_once_and_incidents_alert_then_close(sqlite_env, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    auth = logs / "auth.log"
    write(auth, "".join(ssh_fail(s) for s in range(6)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(auth)]), anomaly_own_events="false")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])

    first = run(kv)
    assert (first["lines"], first["detected_on"], first["sampled_out"]) == (6, 6, 0)
    assert [(a["rule"], a["entity"], a["count"]) for a in first["alerts_opened"]] == [
        ("auth-failures-ip", "203.0.113.9", 6), ("auth-failures-user", "root", 6)]
    assert alerts() == [("anomaly.auth-failures-ip", "ip:203.0.113.9", "high", 1, 6, False),
                        ("anomaly.auth-failures-user", "user:root", "high", 1, 6, False)]
    with session_scope() as session:
        events = session.scalars(select(SecurityEvent).where(SecurityEvent.kind == "anomaly.alert")).all()
        assert sorted(e.details["rule"] for e in events) == ["auth-failures-ip", "auth-failures-user"]
        assert events[0].details["mitre"] == ["T1110.001"]
        assert session.scalar(select(AnomalyCheckpoint.offset)) == auth.stat().st_size

    assert run(kv)["lines"] == 0   # nothing new: nothing counted twice
    write(auth, "".join(ssh_fail(s, minute=1) for s in range(4)))
    again = run(kv)
    assert (again["lines"], again["alerts_opened"], again["alerts_closed"]) == (4, [], 0)  # extends
    closing = run(kv, now=WHEN + 3600)
    assert closing["alerts_closed"] == 2
    assert alerts() == [("anomaly.auth-failures-ip", "ip:203.0.113.9", "high", 1, 10, True),
                        ("anomaly.auth-failures-user", "user:root", "high", 1, 10, True)]


def test_own_security_events_are_a_source(sqlite_env, monkeypatch):
    configure(monkeypatch, anomaly_sources="[]")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    with session_scope() as session:
        for _ in range(6):
            monitor.log_security_event("auth.failure", {"ip": "198.51.100.23", "key_prefix": "sk_x"},
                                       "medium", session=session)
    summary = run(kv, now=datetime.now(UTC).timestamp())
    assert summary["lines"] == 6
    assert ("anomaly.auth-failures-ip", "ip:198.51.100.23", "high", 1, 6, False) in alerts()
    assert run(kv)["lines"] == 0   # the events' checkpoint moved on


def test_a_batch_is_read_and_then_dropped(sqlite_env, tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yml").write_text("rules:\n  - id: y\n    severity: high\n")
    configure(monkeypatch, anomaly_sources="[]", anomaly_own_events="false",
              anomaly_rule_dirs=json.dumps([str(rules)]))
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    lines = [json.dumps({"ts": WHEN + i, "event": "gdpr_access_request", "user": "erin"})
             for i in range(2)] + ["not json"]
    with session_scope() as session:
        batch, (job_id, kind) = anomaly.submit_batch(session=session, source="portal", fmt=None,
                                                     lines=lines, submitted_by="key:test",
                                                     settings=get_settings())
        batch_id = batch.id
    assert kind == "anomaly.ingest"
    summary = run(kv, {"batch_id": batch_id})
    assert (summary["lines"], summary["malformed"]) == (2, 1)
    assert summary["malformed_samples"] == ["portal:3: not JSON: not json"]
    assert summary["rule_problems"] == [f"{rules / 'broken.yml'}: rule 'y': needs 'group_by' "
                                        "(the entity field)"]
    assert [(a["rule"], a["entity"], a["count"]) for a in summary["alerts_opened"]] == [
        ("gdpr-access-request", "erin", 1)]
    with session_scope() as session:
        stored = session.get(AnomalyBatch, batch_id)
        assert (stored.status, stored.lines, stored.format) == ("processed", [], "jsonl")
    assert run(kv, {"batch_id": batch_id}) == summary   # a redelivered job does nothing twice


def test_a_run_over_budget_samples_and_says_so(sqlite_env, tmp_path, monkeypatch):
    auth = tmp_path / "auth.log"
    write(auth, "".join(ssh_fail(s, ip=f"192.0.2.{s}") for s in range(30)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(auth)]), anomaly_own_events="false",
              anomaly_max_lines_per_run="5")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    summary = run(kv)
    # every line up to the budget, then one in ten (the 10th, 20th and 30th)
    assert (summary["lines"], summary["detected_on"], summary["sampled_out"]) == (30, 8, 22)
    assert int(kv.get(ANOMALY_SAMPLED_KEY)) == 22
    with session_scope() as session:
        event = session.scalar(select(SecurityEvent).where(SecurityEvent.kind == "anomaly.sampled"))
        assert event is not None and event.details["sampled_out"] == 22


class Crash(Exception):
    """The failure of a job after detection (its transaction rolls back, it retries)."""


def test_a_retried_run_counts_its_events_once_and_still_alerts(sqlite_env, tmp_path, monkeypatch):
    auth = tmp_path / "auth.log"
    write(auth, "".join(ssh_fail(s) for s in range(6)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(auth)]), anomaly_own_events="false")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    with session_scope() as session:
        job = create_job(session=session, kind="anomaly.ingest", params={}, submitted_by="test")
        session.flush()
        job_id = job.id
    try:
        with session_scope() as session:   # the first attempt fails once it has detected
            anomaly.run_job(session=session, kv=kv, job=session.get(Job, job_id),
                            settings=get_settings(), now=WHEN + 60)
            raise Crash
    except Crash:
        pass
    assert alerts() == []   # rolled back: no alert, no checkpoint
    with session_scope() as session:   # the retry reads the same six lines again
        retry, _ = anomaly.run_job(session=session, kv=kv, job=session.get(Job, job_id),
                                   settings=get_settings(), now=WHEN + 60)
    assert retry["lines"] == 6
    assert [(a["rule"], a["entity"], a["count"]) for a in retry["alerts_opened"]] == [
        ("auth-failures-ip", "203.0.113.9", 6), ("auth-failures-user", "root", 6)]
    assert alerts() == [("anomaly.auth-failures-ip", "ip:203.0.113.9", "high", 1, 6, False),
                        ("anomaly.auth-failures-user", "user:root", "high", 1, 6, False)]
    write(auth, "".join(ssh_fail(s, minute=1) for s in range(4)))
    assert run(kv)["lines"] == 4                       # a new job extends the incidents
    assert run(kv, now=WHEN + 3600)["alerts_closed"] == 2
    assert alerts() == [("anomaly.auth-failures-ip", "ip:203.0.113.9", "high", 1, 10, True),
                        ("anomaly.auth-failures-user", "user:root", "high", 1, 10, True)]


def test_a_burst_raises_only_the_superseding_alert(sqlite_env, tmp_path, monkeypatch):
    """Twelve failures in twelve seconds: the critical fast rule absorbs the high one."""
    auth = tmp_path / "auth.log"
    write(auth, "".join(ssh_fail(s * 3) for s in range(12)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(auth)]), anomaly_own_events="false")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    first = run(kv)
    assert sorted((a["rule"], a["entity"], a["count"]) for a in first["alerts_opened"]) == [
        ("auth-failures-ip-fast", "203.0.113.9", 11), ("auth-failures-user", "root", 6)]
    assert sorted(alerts()) == [
        ("anomaly.auth-failures-ip-fast", "ip:203.0.113.9", "critical", 1, 11, False),
        ("anomaly.auth-failures-user", "user:root", "high", 1, 6, False)]
    write(auth, "".join(ssh_fail(s * 3, minute=1) for s in range(3)))
    assert run(kv)["alerts_opened"] == []   # the burst goes on: still the one alert
    assert run(kv, now=WHEN + 3600)["alerts_closed"] == 2
    assert sorted(alerts()) == [
        ("anomaly.auth-failures-ip-fast", "ip:203.0.113.9", "critical", 1, 15, True),
        ("anomaly.auth-failures-user", "user:root", "high", 1, 15, True)]


def test_a_burst_that_turns_critical_in_a_later_run_escalates_the_high_alert(
        sqlite_env, tmp_path, monkeypatch):
    auth = tmp_path / "auth.log"
    write(auth, "".join(ssh_fail(s * 3) for s in range(6)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(auth)]), anomaly_own_events="false")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    assert [a["rule"] for a in run(kv)["alerts_opened"]] == ["auth-failures-ip", "auth-failures-user"]
    write(auth, "".join(ssh_fail(18 + s * 3) for s in range(6)))   # 12 in 33 s: now critical
    assert [(a["rule"], a["count"]) for a in run(kv)["alerts_opened"]] == [
        ("auth-failures-ip-fast", 11)]
    # one alert for the address: the high one, escalated (rule, severity, count, span)
    assert sorted(alerts()) == [
        ("anomaly.auth-failures-ip-fast", "ip:203.0.113.9", "critical", 2, 11, False),
        ("anomaly.auth-failures-user", "user:root", "high", 1, 6, False)]
    with session_scope() as session:
        row = session.scalar(select(Alert).where(Alert.subject == "ip:203.0.113.9"))
        assert row.details["escalated_from"] == "anomaly.auth-failures-ip"
        assert (row.details["start"], row.details["end"]) == ("2026-12-07T10:00:00Z",
                                                              "2026-12-07T10:00:30Z")
        assert len(row.details["evidence"]) == 10
        events = session.scalars(select(SecurityEvent).where(SecurityEvent.kind == "anomaly.alert")
                                 .order_by(SecurityEvent.id)).all()
        assert [(e.details["rule"], e.details.get("escalated_from")) for e in events] == [
            ("auth-failures-ip", None), ("auth-failures-user", None),
            ("auth-failures-ip-fast", "anomaly.auth-failures-ip")]
    assert run(kv, now=WHEN + 3600)["alerts_closed"] >= 1   # the escalated alert closes as one
    assert sorted(alerts()) == [
        ("anomaly.auth-failures-ip-fast", "ip:203.0.113.9", "critical", 2, 12, True),
        ("anomaly.auth-failures-user", "user:root", "high", 1, 12, True)]


def download(hour: int, size: int, user: str = "ana") -> str:
    when = datetime.fromtimestamp(WHEN + hour * 3600 + 120, UTC).isoformat()
    return json.dumps({"ts": when, "event": "download", "user": user, "ip": "198.51.100.4",
                       "bytes": size}) + "\n"


def test_rate_baselines_outlive_redis_in_the_database(sqlite_env, tmp_path, monkeypatch):
    """Six hours of 150 MB an hour make the account's baseline; Redis then loses every
    window. 250 MB is an ordinary hour against that history (but above the rule's floor of
    200 MB, so it alerts against no history); 2 GB is a spike either way."""
    portal = tmp_path / "portal.jsonl"
    write(portal, "".join(download(h, 150_000_000) for h in range(6)))
    configure(monkeypatch, anomaly_sources=json.dumps([str(portal)]), anomaly_own_events="false")
    kv = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"])
    assert run(kv, now=WHEN + 6 * 3600)["alerts_opened"] == []
    with session_scope() as session:
        kept = {(b.rule, b.entity): b.state for b in session.scalars(select(AnomalyBaseline))}
    assert sorted(kept) == [("download-volume-spike", "*"), ("download-volume-spike", "ana")]
    assert kept[("download-volume-spike", "ana")][4][2] == 5   # five hours closed, one running

    kv.flushdb()   # Redis restarted empty (or the windows' keys expired)
    write(portal, download(6, 250_000_000))
    assert run(kv, now=WHEN + 7 * 3600)["alerts_opened"] == []
    write(portal, download(7, 2_000_000_000))
    spike = run(kv, now=WHEN + 8 * 3600)["alerts_opened"]
    assert [(a["rule"], a["entity"], a["count"]) for a in spike] == [
        ("download-volume-spike", "ana", 1)]
    assert alerts() == [("anomaly.download-volume-spike", "user:ana", "high", 1, 1, False)]
