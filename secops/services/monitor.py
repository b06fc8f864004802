"""Security monitoring: one interface, :func:`log_security_event`, and alert rules over it.

An event is stored (``security_events``) and logged. Alert rules then count events in
sliding windows kept in Redis, so every API process and worker contributes to the same
counts; the window script reads Redis ``TIME`` and keeps only the newest
``threshold + 1`` entries per group, which is all "more than threshold in the window"
needs (memory stays bounded under a flood). A rule that fires raises an alert, grouped
by ``rule:subject``: while that alert is open, further firings only bump its
``occurrences`` and ``last_seen_at`` (a Redis gate stops two processes from opening
twin alerts). A new alert goes to the sinks: the log at once, and a webhook through an
``alerts.deliver`` job (retried with backoff) whose id is returned for the boundary to
publish after it commits.

Job families add their own rules with :func:`register_rule`; the built-in thresholds
come from the settings (``SECOPS_ALERT_*``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.config import Settings, get_settings, parse_rate
from secops.db.base import utcnow
from secops.db.models import Alert, Job, JobStatus, SecurityEvent
from secops.errors import InvalidInput
from secops.services.redisconn import REDIS_ERRORS, lua_script

log = logging.getLogger("secops.security")
SEVERITIES = ("low", "medium", "high", "critical")
DELIVER_KIND = "alerts.deliver"
WINDOW_PREFIX = "secops:aw:"
GATE_PREFIX = "secops:ag:"
SAMPLE_PREFIX = "secops:es:"
SAMPLE_SECONDS = 60
_LEVELS = {"low": logging.INFO, "medium": logging.WARNING, "high": logging.WARNING,
           "critical": logging.ERROR}
_WINDOW_SCRIPT = lua_script("""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1]) * 1000000
local keep = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return redis.call('ZCARD', KEYS[1])
""")


@dataclass(frozen=True)
class AlertRule:
    """Fire ``severity`` when more than ``threshold`` events of ``event_kinds`` share the
    same ``details[group_by]`` within ``window`` seconds."""

    name: str
    event_kinds: frozenset[str]
    group_by: str
    threshold: int
    window: int
    severity: str
    title: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity}")


_extra_rules: dict[str, AlertRule] = {}


def register_rule(rule: AlertRule) -> AlertRule:
    """Add a rule (later job families call this at import, next to their kinds)."""
    _extra_rules[rule.name] = rule
    return rule


def active_rules(settings: Settings | None = None) -> list[AlertRule]:
    settings = settings or get_settings()
    fails, fails_window = parse_rate(settings.alert_auth_failures)
    burst, burst_window = parse_rate(settings.alert_auth_burst)
    limited, limited_window = parse_rate(settings.alert_rate_limited)
    auth = frozenset({"auth.failure"})
    builtin = [
        AlertRule("auth.failures.ip", auth, "ip", fails, fails_window, "high",
                  "repeated failed authentication from one IP"),
        AlertRule("auth.failures.key", auth, "key_prefix", fails, fails_window, "high",
                  "repeated failed authentication for one API key"),
        AlertRule("auth.burst.ip", auth, "ip", burst, burst_window, "critical",
                  "burst of failed authentication from one IP"),
        AlertRule("ratelimit.flood.ip", frozenset({"ratelimit.rejected"}), "ip", limited,
                  limited_window, "high", "many rate-limited requests from one IP"),
        AlertRule("audit.chain_broken", frozenset({"audit.chain_broken"}), "subject", 0, 86400,
                  "critical", "the audit log's hash chain does not verify"),
        AlertRule("ratelimit.unavailable", frozenset({"ratelimit.unavailable"}), "subject", 0,
                  300, "high", "the rate limiter cannot reach Redis: requests refused"),
    ]
    return builtin + list(_extra_rules.values())


@dataclass
class EventOutcome:
    """What an event caused: its row (if stored), alerts touched, delivery jobs to publish."""

    event_id: int | None = None
    new_alerts: list[Alert] = field(default_factory=list)
    grouped_alerts: list[Alert] = field(default_factory=list)
    deliveries: list[tuple[str, str]] = field(default_factory=list)


def log_security_event(
    kind: str,
    details: dict[str, Any],
    severity: str = "medium",
    *,
    session: Session,
    kv: redis.Redis | None = None,
    sample_key: str | None = None,
) -> EventOutcome:
    """Store and log a security event, then run the alert rules over it.

    ``sample_key`` marks high-volume events (rate-limit refusals): those are stored and
    logged at most once a minute per key, but every one still counts in the rules.
    Without Redis (``kv`` None or down) the event is still stored and logged.
    """
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
    outcome = EventOutcome()
    if _should_record(kv, kind, sample_key):
        event = SecurityEvent(kind=kind[:64], severity=severity, details=details,
                              created_at=utcnow())
        session.add(event)
        session.flush()
        outcome.event_id = event.id
        log.log(_LEVELS[severity], "security event",
                extra={"event": kind, "severity": severity, "details": details})
    if kv is None:
        return outcome
    for rule in active_rules():
        subject = details.get(rule.group_by)
        if kind not in rule.event_kinds or not subject:
            continue
        try:
            count = _count(kv, rule, str(subject))
        except REDIS_ERRORS:
            log.warning("alert rules skipped: Redis unavailable", extra={"event": kind})
            return outcome
        if count > rule.threshold:
            _fire(session, kv, rule, str(subject), count, outcome)
    return outcome


def raise_alert(rule: AlertRule, subject: str, count: int, *, session: Session,
                kv: redis.Redis, details: dict[str, Any] | None = None) -> EventOutcome:
    """Open an alert for ``rule`` and ``subject``, or group it into the open one, as a rule
    firing would (for families that detect outside the event windows, such as anomaly);
    ``details`` are merged into the alert's."""
    outcome = EventOutcome()
    _fire(session, kv, rule, subject, count, outcome)
    for alert in outcome.new_alerts + outcome.grouped_alerts:
        alert.details = {**alert.details, **(details or {})}
    return outcome


def _should_record(kv: redis.Redis | None, kind: str, sample_key: str | None) -> bool:
    if sample_key is None or kv is None:
        return True
    try:
        return bool(kv.set(f"{SAMPLE_PREFIX}{kind}:{sample_key}", 1, nx=True, ex=SAMPLE_SECONDS))
    except REDIS_ERRORS:
        return True


def _count(kv: redis.Redis, rule: AlertRule, subject: str) -> int:
    key = f"{WINDOW_PREFIX}{rule.name}:{subject}"
    return int(_WINDOW_SCRIPT(keys=[key], args=[rule.window, rule.threshold + 1,
                                                secrets.token_hex(8)], client=kv))


def queue_delivery(session: Session, alert_id: str) -> list[tuple[str, str]]:
    """The ``alerts.deliver`` job for an alert, in the caller's transaction, when a webhook
    is configured; the (job id, kind) pairs to publish after the commit."""
    if not get_settings().alert_webhook_url:
        return []
    job = Job(kind=DELIVER_KIND, params={"alert_id": alert_id}, status=JobStatus.queued.value,
              attempts=0, submitted_by="system:alerts")
    session.add(job)
    session.flush()
    return [(job.id, job.kind)]


def _fire(session: Session, kv: redis.Redis, rule: AlertRule, subject: str, count: int,
          outcome: EventOutcome) -> None:
    dedup = f"{rule.name}:{subject}"[:300]
    now = utcnow()
    existing = session.scalar(
        select(Alert).where(Alert.dedup_key == dedup, Alert.status == "open")
        .order_by(Alert.first_seen_at.desc()).limit(1)
    )
    if existing is None:
        try:
            opened = kv.set(f"{GATE_PREFIX}{dedup}", 1, nx=True, ex=rule.window)
        except REDIS_ERRORS:
            opened = True
        if not opened:
            return  # another process is opening this alert right now
        alert = Alert(rule=rule.name, severity=rule.severity, title=rule.title,
                      subject=subject[:200], dedup_key=dedup, status="open", occurrences=1,
                      details={"count": count, "window_seconds": rule.window,
                               "threshold": rule.threshold, rule.group_by: subject},
                      first_seen_at=now, last_seen_at=now)
        session.add(alert)
        session.flush()
        outcome.new_alerts.append(alert)
        log.log(_LEVELS[rule.severity], "security alert",
                extra={"alert_id": alert.id, "rule": rule.name, "severity": rule.severity,
                       "subject": subject, "count": count})
        outcome.deliveries.extend(queue_delivery(session, alert.id))
        return
    existing.occurrences += 1
    existing.last_seen_at = now
    existing.details = {**existing.details, "count": max(count, existing.details.get("count", 0))}
    outcome.grouped_alerts.append(existing)
