"""Anomaly detection on the platform: log sources, the ``anomaly.ingest`` job, alerts.

A scheduled ``anomaly.ingest`` run (every five minutes by default, the ``anomaly-ingest``
schedule row) reads what is new in the configured log files (``SECOPS_ANOMALY_SOURCES``:
files with their rotated siblings, directories, glob patterns; checkpoints in
``anomaly_checkpoints`` follow rotation, compression and copytruncate) and SecOps' own
security events since the last run. A run for a batch sent to ``POST
/v1/anomaly/ingest`` reads that batch. Either way the events go through the engine's
detector with its windows in Redis (:mod:`secops.services.anomaly_windows`), so every
worker and every run share them; Drain3 templates live in Redis too. The rolling history
of rate baselines is also kept in ``anomaly_baselines`` (written with the run, read when
Redis has lost a window, deleted after ``BASELINE_RETENTION_DAYS`` without an update).

An incident that opens raises an alert through the monitor (``anomaly.<rule>`` on
``<entity type>:<entity>``: stored, logged, deduplicated while open, sent to the
webhook) and an ``anomaly.alert`` security event; when it closes, the alert's details get
its final count, span and evidence. Superseding applies on opening as on closing: a
burst that opens a rule and one that supersedes it raises only the superseding alert,
and when the superseding rule opens in a later run, the alert an earlier run raised for
the same entity and incident is escalated to it (rule, severity, count, span, evidence;
``escalated_from`` in its details) rather than a second alert raised. A run with more lines than
``SECOPS_ANOMALY_MAX_LINES_PER_RUN`` detects on every line up to that budget and on one
line in ``SAMPLE_STRIDE`` after it: the lines sampled out are counted in the job's
result, in the ``secops_anomaly_lines_sampled_out`` metric and in an
``anomaly.sampled`` security event, never dropped silently.
"""

from __future__ import annotations

import glob
import hashlib
import heapq
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from secops.anomaly import AnomalyError, Detector, Event, RuleSet
from secops.anomaly.detector import Alert as DetectedAlert
from secops.anomaly.detector import iso
from secops.anomaly.novelty import TemplateState
from secops.anomaly.parsers import DETECT_LINES, LineReader, ParseStats, detect_format, make_parser
from secops.anomaly.reading import open_text
from secops.anomaly.tailing import Cursor, TailedLine, new_lines
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import (
    Alert,
    AnomalyBaseline,
    AnomalyBatch,
    AnomalyCheckpoint,
    Job,
    SecurityEvent,
)
from secops.errors import InvalidInput, NotFound
from secops.services import monitor
from secops.services.anomaly_windows import PREFIX, RedisWindowStore
from secops.services.jobs import create_job
from secops.services.metrics import ANOMALY_SAMPLED_KEY
from secops.services.redisconn import REDIS_ERRORS

KIND = "anomaly.ingest"
FORMATS = ("syslog", "combined", "jsonl")
EVENTS_CHECKPOINT = "security-events"
ALERT_EVENT = "anomaly.alert"
SAMPLED_EVENT = "anomaly.sampled"
SAMPLE_STRIDE = 10
OWN_EVENTS_PER_RUN = 100_000
BASELINE_RETENTION_DAYS = 35


# -- checkpoints and template state -------------------------------------------------------


class DbCheckpoints:
    """Tailing checkpoints in ``anomaly_checkpoints`` (written in the run's transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, fingerprint: str) -> int | None:
        row = self.session.get(AnomalyCheckpoint, fingerprint)
        return None if row is None else int(row.offset)

    def put(self, fingerprint: str, offset: int, path: str) -> None:
        row = self.session.get(AnomalyCheckpoint, fingerprint)
        if row is None:
            row = AnomalyCheckpoint(fingerprint=fingerprint, path=path[:1024], offset=offset,
                                    updated_at=utcnow())
            self.session.add(row)
        else:
            row.offset, row.path, row.updated_at = offset, path[:1024], utcnow()


QUERY_CHUNK = 500  # keys per query when the baselines are written


class DbBaselines:
    """The rolling history of rate baselines in ``anomaly_baselines``: read when Redis no
    longer holds a window (expired, flushed, a new Redis), written with the run's
    transaction, forgotten after ``BASELINE_RETENTION_DAYS`` without an update."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.kept: dict[str, list[Any]] = {}

    @staticmethod
    def _id(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()

    def load(self, key: str) -> list[Any] | None:
        row = self.session.get(AnomalyBaseline, self._id(key))
        return None if row is None else list(row.state)

    def keep(self, key: str, state: list[Any]) -> None:
        self.kept[key] = state

    def save(self) -> int:
        """Write the windows this run touched; drop rows idle past the retention."""
        now = utcnow()
        ids = {key: self._id(key) for key in self.kept}
        wanted = sorted(ids.values())
        rows: dict[str, AnomalyBaseline] = {}
        for i in range(0, len(wanted), QUERY_CHUNK):  # the existing rows, a chunk a query
            rows.update((row.key, row) for row in self.session.scalars(select(AnomalyBaseline)
                        .where(AnomalyBaseline.key.in_(wanted[i:i + QUERY_CHUNK]))))
        for key, state in self.kept.items():
            value = json.loads(json.dumps(state))   # a snapshot, as plain JSON
            row = rows.get(ids[key])
            if row is None:
                rule, _, entity = key.partition("\x1f")
                self.session.add(AnomalyBaseline(key=self._id(key), rule=rule[:100],
                                                 entity=entity[:400], state=value,
                                                 updated_at=now))
            else:
                row.state, row.updated_at = value, now
        written = len(self.kept)
        self.kept = {}
        self.session.execute(delete(AnomalyBaseline).where(
            AnomalyBaseline.updated_at < now - timedelta(days=BASELINE_RETENTION_DAYS)))
        return written


class RedisTemplateState(TemplateState):
    """A rule's Drain3 templates and learning start, in Redis (shared by workers)."""

    def __init__(self, kv: redis.Redis, rule_id: str,
                 store: RedisWindowStore | None = None) -> None:
        self.kv = kv
        self.key = f"{PREFIX}drain:{rule_id}"
        self.store = store

    def save_state(self, state: bytes) -> None:
        # learnt with the chunk that learnt it: a chunk that fails teaches nothing
        if self.store is None or not self.store.put_later(self.key, state):
            self.kv.set(self.key, state)

    def load_state(self) -> bytes | None:
        value = self.kv.get(self.key)
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def learning_started(self, ts: float) -> float:
        self.kv.set(self.key + ":start", ts, nx=True)
        return float(self.kv.get(self.key + ":start") or ts)  # type: ignore[arg-type]


# -- configuration ------------------------------------------------------------------------------


def source_paths(settings: Settings) -> list[Path]:
    """The files of ``anomaly_sources``: a file with its rotated siblings (``auth.log.1``,
    ``auth.log.2.gz``), every file under a directory, or what a glob pattern matches."""
    found: set[Path] = set()
    for entry in settings.anomaly_sources:
        if any(c in entry for c in "*?["):
            found.update(Path(p) for p in glob.glob(entry) if os.path.isfile(p))
        elif os.path.isdir(entry):
            found.update(p for p in Path(entry).rglob("*") if p.is_file())
        else:
            found.update(Path(p) for p in glob.glob(glob.escape(entry) + "*") if os.path.isfile(p))
    return sorted(found)


def load_rules(settings: Settings) -> RuleSet:
    return RuleSet.load(*settings.anomaly_rule_dirs) if settings.anomaly_rule_dirs else RuleSet.shipped()


def load_baseline(settings: Settings) -> dict[str, list[str]] | None:
    path = settings.anomaly_baseline_ips
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"SECOPS_ANOMALY_BASELINE_IPS: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(ip, str) for ip in v) for v in data.values()):
        raise InvalidInput("SECOPS_ANOMALY_BASELINE_IPS must hold {account: [IPs]}")
    return data


# -- batches from the API -------------------------------------------------------------------------


def submit_batch(*, session: Session, source: str, fmt: str | None, lines: list[str],
                 submitted_by: str, settings: Settings) -> tuple[AnomalyBatch, tuple[str, str]]:
    """Keep a batch of lines until its ``anomaly.ingest`` job has read it."""
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)} (or absent: detected)")
    if not lines:
        raise InvalidInput("lines must not be empty")
    if len(lines) > settings.anomaly_ingest_max_lines:
        raise InvalidInput(f"at most {settings.anomaly_ingest_max_lines} lines per batch")
    longest = max(len(line) for line in lines)
    if longest > settings.anomaly_ingest_max_line_chars:
        raise InvalidInput(f"lines must be at most {settings.anomaly_ingest_max_line_chars} "
                           "characters")
    if fmt is None:
        try:
            fmt = detect_format(lines)
        except AnomalyError as exc:
            raise InvalidInput(str(exc)) from None
    batch = AnomalyBatch(source=source[:200], format=fmt, lines=lines, line_count=len(lines),
                         status="pending", submitted_by=submitted_by[:80], created_at=utcnow())
    session.add(batch)
    session.flush()
    job = create_job(session=session, kind=KIND, params={"batch_id": batch.id},
                     submitted_by=submitted_by)
    session.flush()
    batch.job_id = job.id
    return batch, (job.id, job.kind)


def get_batch(*, session: Session, batch_id: str) -> AnomalyBatch:
    batch = session.get(AnomalyBatch, batch_id)
    if batch is None:
        raise NotFound("batch not found")
    return batch


# -- own security events -------------------------------------------------------------------------


def from_security_event(row: SecurityEvent) -> Event | None:
    """SecOps' own security events as log events (its anomaly events are left out)."""
    if row.kind.startswith("anomaly."):
        return None
    d = row.details or {}
    ts = row.created_at.timestamp()
    raw = json.dumps({"ts": row.created_at.isoformat(), "event": row.kind, **d}, default=str)
    ip = d.get("ip") if isinstance(d.get("ip"), str) else None
    common: dict[str, Any] = {"ip": ip, "host": "secops", "service": "secops-api"}
    if row.kind == "auth.failure":
        return Event(ts, "login", raw, "json", success=False,
                     user=str(d.get("key_prefix") or "") or None, **common)
    if row.kind == "ratelimit.rejected":
        return Event(ts, "request", raw, "json", path=str(d.get("path") or "") or None,
                     status=429, **common)
    user = d.get("submitted_by") or d.get("actor")
    return Event(ts, row.kind, raw, "json", user=str(user) if user else None, **common,
                 extra={k: v for k, v in d.items() if k not in ("ip",)})


# -- the run --------------------------------------------------------------------------------------


@dataclass
class RunState:
    lines: int = 0
    sampled_out: int = 0
    stats: dict[str, ParseStats] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _file_events(path: Path, cps: DbCheckpoints, cursor: Cursor,
                 state: RunState) -> Iterator[tuple[Event, TailedLine]]:
    try:
        with open_text(path) as fh:
            head = [line.rstrip("\r\n") for _, line in zip(range(DETECT_LINES * 4), fh, strict=False)]
        fmt = detect_format(head)
        reference = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (OSError, EOFError, AnomalyError) as exc:
        state.errors.append(f"{path}: {exc.strerror if isinstance(exc, OSError) else exc}")
        return
    stats = state.stats.setdefault(str(path), ParseStats())
    reader = LineReader(make_parser(fmt, reference=reference), origin=path.name, stats=stats)
    for line in new_lines([path], cps):
        events = reader.one(line.text)
        if not events:
            cursor.advance(line)
        for event in events:
            yield event, line


def _sampled(stream: Iterator[tuple[Event, TailedLine | None]], budget: int, state: RunState,
             cursor: Cursor) -> Iterator[Event]:
    seen = 0
    for event, line in stream:
        seen += 1
        if line is not None:
            cursor.advance(line)
        if seen > budget and seen % SAMPLE_STRIDE:
            state.sampled_out += 1
            continue
        state.lines += 1
        yield event


def _rule_for(alert: DetectedAlert, gap: float) -> monitor.AlertRule:
    return monitor.AlertRule(name=f"anomaly.{alert.rule}"[:64], event_kinds=frozenset(),
                             group_by="entity", threshold=0, window=max(60, int(gap)),
                             severity=alert.severity, title=(alert.title or alert.rule)[:200])


def _subject(alert: DetectedAlert) -> str:
    return f"{alert.entity_type}:{alert.entity}"[:200]


def _dedup(rule_id: str, alert: DetectedAlert) -> str:
    """The monitor's dedup key of rule ``rule_id``'s alert on ``alert``'s entity."""
    return (f"anomaly.{rule_id}"[:64] + ":" + _subject(alert))[:300]


def _raise(session: Session, kv: redis.Redis, detector: Detector, alert: DetectedAlert,
           deliveries: list[tuple[str, str]]) -> None:
    rule = next((r for r in detector.rules if r.id == alert.rule), None)
    gap = rule.incident_gap if rule is not None else 600.0
    if (alert.rule, alert.entity_type, alert.entity) in detector.replayed:
        # raised by a failed attempt of this job, whose alert row rolled back: its
        # opening gate must not keep the retry from raising it
        kv.delete(monitor.GATE_PREFIX + _dedup(alert.rule, alert))
    outcome = monitor.raise_alert(_rule_for(alert, gap), _subject(alert), alert.count,
                                  session=session, kv=kv, details=alert.to_record())
    deliveries.extend(outcome.deliveries)
    event = monitor.log_security_event(
        ALERT_EVENT, {"rule": alert.rule, "entity": alert.entity, "entity_type": alert.entity_type,
                      "count": alert.count, "mitre": list(alert.mitre)},
        alert.severity, session=session, kv=kv)
    deliveries.extend(event.deliveries)


def _escalate(session: Session, kv: redis.Redis, detector: Detector, alert: DetectedAlert,
              deliveries: list[tuple[str, str]]) -> bool:
    """An alert of a rule this one supersedes, raised by an earlier run for the same entity,
    still open and overlapping this incident, becomes this alert (rule, severity, count,
    span and evidence): one incident, one alert. False when there is none to escalate."""
    rule = next((r for r in detector.rules if r.id == alert.rule), None)
    if rule is None:
        return False
    for loser in rule.supersedes:
        row = session.scalar(select(Alert).where(Alert.dedup_key == _dedup(loser, alert),
                                                 Alert.status == "open")
                             .order_by(Alert.first_seen_at.desc()).limit(1))
        if row is None:
            continue
        start, end = _span(row.details)
        slack = rule.incident_gap
        if start is None or end is None or not (
                start <= alert.end + slack and alert.start <= end + slack):
            continue
        winner = _rule_for(alert, rule.incident_gap)
        row.rule, row.severity, row.title = winner.name, winner.severity, winner.title
        row.dedup_key = _dedup(alert.rule, alert)
        row.occurrences += 1
        row.last_seen_at = utcnow()
        record = alert.to_record()
        row.details = {**row.details, **record, "count": max(alert.count, row.details.get("count", 0)),
                       "start": iso(min(start, alert.start)), "escalated_from": row.details.get(
                           "escalated_from", f"anomaly.{loser}"), "closed": False}
        deliveries.extend(monitor.queue_delivery(session, row.id))
        event = monitor.log_security_event(
            ALERT_EVENT, {"rule": alert.rule, "entity": alert.entity,
                          "entity_type": alert.entity_type, "count": alert.count,
                          "mitre": list(alert.mitre), "escalated_from": f"anomaly.{loser}",
                          "alert_id": row.id},
            alert.severity, session=session, kv=kv)
        deliveries.extend(event.deliveries)
        return True
    return False


def _span(details: dict[str, Any]) -> tuple[float | None, float | None]:
    try:
        return (datetime.fromisoformat(str(details["start"]).replace("Z", "+00:00")).timestamp(),
                datetime.fromisoformat(str(details["end"]).replace("Z", "+00:00")).timestamp())
    except (KeyError, ValueError):
        return None, None


def _close(session: Session, alert: DetectedAlert) -> None:
    row = session.scalar(select(Alert).where(Alert.dedup_key == _dedup(alert.rule, alert))
                         .order_by(Alert.first_seen_at.desc()).limit(1))
    if row is not None:
        row.details = {**row.details, **alert.to_record(), "closed": True}


def run_job(*, session: Session, kv: redis.Redis, job: Job, settings: Settings,
            now: float | None = None) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Read the job's sources, detect, raise and close alerts; (summary, deliveries)."""
    rules = load_rules(settings)
    baselines = DbBaselines(session)
    store = RedisWindowStore(kv, job=job.id, history=baselines)
    detector = Detector(rules, store=store, baseline_ips=load_baseline(settings),
                        template_state=lambda rule_id: RedisTemplateState(kv, rule_id, store))
    state = RunState()
    cps = DbCheckpoints(session)
    cursor = Cursor(cps)
    batch_id = (job.params or {}).get("batch_id")
    streams: list[Iterator[tuple[Event, TailedLine | None]]] = []
    batch: AnomalyBatch | None = None
    if batch_id:
        batch = get_batch(session=session, batch_id=batch_id)
        if batch.status == "processed":
            return dict(batch.result or {}), []
        stats = state.stats.setdefault(f"batch:{batch.source}", ParseStats())
        reader = LineReader(make_parser(batch.format or "jsonl"), origin=batch.source, stats=stats)
        streams.append((e, None) for line in batch.lines for e in reader.one(line))
    else:
        for path in source_paths(settings):
            streams.append(_file_events(path, cps, cursor, state))
        last_event = None
        if settings.anomaly_own_events:
            mark = cps.get(EVENTS_CHECKPOINT) or 0
            rows = session.scalars(select(SecurityEvent).where(SecurityEvent.id > mark)
                                   .order_by(SecurityEvent.id).limit(OWN_EVENTS_PER_RUN)).all()
            if rows:
                last_event = rows[-1].id
            own = [(e, None) for e in map(from_security_event, rows) if e is not None]
            streams.append(iter(own))   # type: ignore[arg-type]
    merged = heapq.merge(*streams, key=lambda pair: pair[0].ts)
    detector.feed_all(_sampled(merged, settings.anomaly_max_lines_per_run, state, cursor))
    closed = detector.take_closed(now if now is not None else time.time())
    deliveries: list[tuple[str, str]] = []
    opened = detector.take_opened()
    for alert in opened:
        if not _escalate(session, kv, detector, alert, deliveries):
            _raise(session, kv, detector, alert, deliveries)
    for alert in closed:
        _close(session, alert)
    cursor.commit()
    baselines.save()
    if not batch_id and settings.anomaly_own_events and last_event is not None:
        cps.put(EVENTS_CHECKPOINT, last_event, "security_events")
    if state.sampled_out:
        try:
            kv.incrby(ANOMALY_SAMPLED_KEY, state.sampled_out)
        except REDIS_ERRORS:
            pass
        sampled = monitor.log_security_event(
            SAMPLED_EVENT, {"job_id": job.id, "sampled_out": state.sampled_out,
                            "budget": settings.anomaly_max_lines_per_run}, "medium",
            session=session, kv=kv)
        deliveries.extend(sampled.deliveries)
    summary = {
        "lines": state.lines + state.sampled_out,
        "detected_on": state.lines,
        "sampled_out": state.sampled_out,
        "malformed": sum(s.malformed for s in state.stats.values()),
        "malformed_samples": [x for s in state.stats.values() for x in s.samples][:10],
        "errors": state.errors[:10],
        "rule_problems": rules.problems[:20],
        "alerts_opened": [a.to_dict() | {"mitre": list(a.mitre)} for a in opened][:50],
        "alerts_closed": len(closed),
    }
    if batch is not None:
        batch.status, batch.result, batch.processed_at = "processed", summary, utcnow()
        batch.lines = []   # the lines are not kept once read
    return summary, deliveries
