"""The ``certs.scan`` job: check inventoried targets, record what they served, raise alerts.

Per target, each distinct certificate is one history row; the one served now is
``current``. Change detection compares it with the previous current certificate:
``renewed`` (a later expiry), ``key_changed`` (a new key without a later expiry: a
replacement nobody renewed), ``issuer_changed``, ``replaced``; ``first_seen`` for a
target's first certificate. Changes are security events (``cert.changed``), the
suspicious two with an alert.

Findings become ``cert.finding`` security events and alerts through the monitor,
deduplicated per target, certificate, finding and severity by a ``cert_notices`` row:
an expiring certificate alerts once at each threshold it crosses (30, 14, 7, 2 days by
default), never once a day. An unreachable target alerts once per outage.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.certs import CertReport, Checker, Endpoint, FileTarget, Result, TargetError, Thresholds, pins
from secops.certs.check import pin_finding
from secops.certs.tls import bounded_map
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import CertNotice, CertSeen, CertTarget, Job
from secops.services import monitor

FINDING_EVENT = "cert.finding"
CHANGE_EVENT = "cert.changed"
ALERTING_CHANGES = {"key_changed": "high", "issuer_changed": "medium"}
for _severity in monitor.SEVERITIES:
    monitor.register_rule(monitor.AlertRule(
        f"certs.{_severity}", frozenset({FINDING_EVENT, CHANGE_EVENT}), f"alert_{_severity}", 0,
        86400, _severity, f"certificate problem ({_severity})"))


@functools.lru_cache(maxsize=4)
def _checker(ca_file: str | None, timeout: float, workers: int, thresholds: str, fraction: float,
             probe_weak: bool) -> Checker:
    return Checker(thresholds=Thresholds.from_days(thresholds, renewal_fraction=fraction),
                   ca_file=ca_file, timeout=timeout, workers=workers, probe_weak=probe_weak)


def get_checker(settings: Settings) -> Checker:
    return _checker(str(settings.certs_ca_file) if settings.certs_ca_file else None,
                    settings.certs_timeout, settings.certs_concurrency, settings.certs_thresholds,
                    settings.certs_renewal_fraction, settings.certs_probe_weak_protocols)


@dataclass(frozen=True)
class PlannedTarget:
    target_id: str
    key: str
    engine_target: Endpoint | FileTarget
    pins: frozenset[str]


@dataclass
class ScanPlan:
    targets: list[PlannedTarget] = field(default_factory=list)


def plan_scan(*, session: Session, job: Job) -> ScanPlan:
    query = select(CertTarget).where(CertTarget.enabled.is_(True))
    ids = job.params.get("target_ids")
    if ids:
        query = query.where(CertTarget.id.in_(ids))
    rows = list(session.scalars(query.order_by(CertTarget.key)).all())
    tag = job.params.get("tag")
    if tag:
        rows = [r for r in rows if tag in (r.tags or [])]
    plan = ScanPlan()
    for row in rows:
        engine_target: Endpoint | FileTarget
        if row.kind == "endpoint":
            assert row.host is not None and row.port is not None
            engine_target = Endpoint(row.host, row.port, row.sni, row.key)
        else:
            engine_target = FileTarget(row.path or "")
        plan.targets.append(PlannedTarget(row.id, row.key, engine_target, frozenset(row.pins or [])))
    return plan


def execute_scan(plan: ScanPlan, *, checker: Checker) -> list[tuple[PlannedTarget, list[Result]]]:
    """Check every planned target (concurrently, bounded); no database work here."""
    def one(planned: PlannedTarget) -> tuple[PlannedTarget, list[Result]]:
        results: list[Result]
        if isinstance(planned.engine_target, FileTarget):
            results = list(checker.check_path(planned.engine_target.path))
        else:
            results = [checker.check_endpoint(planned.engine_target)]
        for result in results:
            if isinstance(result, CertReport) and not pins.satisfies(planned.pins, result.chain_spki):
                result.findings.append(pin_finding(result.spki_sha256))
        return planned, results

    return list(bounded_map(one, plan.targets, workers=checker.workers))


@dataclass
class ScanOutcome:
    summary: dict[str, Any]
    deliveries: list[tuple[str, str]]


def record_scan(*, session: Session, results: Iterable[tuple[PlannedTarget, list[Result]]],
                kv: redis.Redis | None) -> ScanOutcome:
    now = utcnow()
    deliveries: list[tuple[str, str]] = []
    counts = {"targets": 0, "certificates": 0, "errors": 0, "findings": 0, "changes": 0,
              "events": 0}
    for planned, items in results:
        target = session.get(CertTarget, planned.target_id)
        if target is None:
            continue  # deleted while the scan ran
        counts["targets"] += 1
        target.last_scan_at = now
        reports = [r for r in items if isinstance(r, CertReport)]
        errors = [r for r in items if isinstance(r, TargetError)]
        target.last_error = "; ".join(e.error for e in errors)[:500] or None
        target.last_findings = [f.to_dict() | {"position": i} for i, r in enumerate(items)
                                for f in r.findings]
        counts["errors"] += len(errors)
        if reports:  # reachable again: a later outage alerts anew
            session.query(CertNotice).filter(CertNotice.target_id == target.id,
                                             CertNotice.fingerprint == "").delete()
        for position, item in enumerate(items):
            counts["findings"] += len(item.findings)
            if isinstance(item, CertReport):
                counts["certificates"] += 1
                change = _record_certificate(session, target, position, item, now)
                if change is not None:
                    counts["changes"] += 1
                    deliveries += _change_event(session, kv, target, item, change)
                    counts["events"] += 1
                fingerprint = item.fingerprint_sha256
            else:
                fingerprint = ""
            for finding in item.findings:
                sent = _finding_event(session, kv, target, fingerprint, finding.id, finding.severity,
                                      finding.description)
                if sent is not None:
                    counts["events"] += 1
                    deliveries += sent
    return ScanOutcome(counts, deliveries)


def _record_certificate(session: Session, target: CertTarget, position: int, report: CertReport,
                        now: datetime) -> str | None:
    rows = list(session.scalars(select(CertSeen).where(CertSeen.target_id == target.id,
                                                       CertSeen.position == position)).all())
    previous = next((r for r in rows if r.current), None)
    same = next((r for r in rows if r.fingerprint == report.fingerprint_sha256), None)
    for row in rows:
        row.current = row is same
    if same is not None:
        same.last_seen_at, same.days_left = now, report.days_left
        same.findings = [f.to_dict() for f in report.findings]
        return None if previous is same else "reverted"
    change = _classify_change(previous, report)
    session.add(CertSeen(
        target_id=target.id, position=position, fingerprint=report.fingerprint_sha256,
        spki_sha256=report.spki_sha256, subject=report.subject[:2000], issuer=report.issuer[:2000],
        serial=report.serial[:80], sans=report.sans[:500],
        not_before=datetime.fromisoformat(report.not_before.replace("Z", "+00:00")),
        not_after=datetime.fromisoformat(report.not_after.replace("Z", "+00:00")),
        key_type=report.key_type[:16], key_bits=report.key_bits,
        signature_algorithm=report.signature_algorithm[:64], days_left=report.days_left,
        change=change, current=True, findings=[f.to_dict() for f in report.findings],
        first_seen_at=now, last_seen_at=now))
    session.flush()
    return change


def _classify_change(previous: CertSeen | None, report: CertReport) -> str:
    if previous is None:
        return "first_seen"
    later = datetime.fromisoformat(report.not_after.replace("Z", "+00:00")) > previous.not_after
    if report.spki_sha256 != previous.spki_sha256 and not later:
        return "key_changed"
    if report.issuer != previous.issuer:
        return "issuer_changed"
    return "renewed" if later else "replaced"


def _change_event(session: Session, kv: redis.Redis | None, target: CertTarget, report: CertReport,
                  change: str) -> list[tuple[str, str]]:
    severity = ALERTING_CHANGES.get(change, "low")
    details: dict[str, Any] = {"subject": target.key, "target_id": target.id, "change": change,
                               "fingerprint": report.fingerprint_sha256, "issuer": report.issuer,
                               "spki_sha256": report.spki_sha256, "not_after": report.not_after}
    if change in ALERTING_CHANGES:
        details[f"alert_{severity}"] = f"{target.key}|{change}|{report.fingerprint_sha256[:16]}"
    return monitor.log_security_event(CHANGE_EVENT, details, severity, session=session,
                                      kv=kv).deliveries


def _finding_event(session: Session, kv: redis.Redis | None, target: CertTarget, fingerprint: str,
                   finding: str, severity: str, description: str) -> list[tuple[str, str]] | None:
    """One event and alert per target, certificate, finding and severity; None if already sent."""
    if severity not in monitor.SEVERITIES:
        return None
    exists = session.scalar(select(CertNotice.id).where(
        CertNotice.target_id == target.id, CertNotice.fingerprint == fingerprint,
        CertNotice.finding == finding, CertNotice.severity == severity))
    if exists is not None:
        return None
    details = {"subject": target.key, "target_id": target.id, "finding": finding,
               "fingerprint": fingerprint or None, "description": description[:500],
               "owner": target.owner, f"alert_{severity}": f"{target.key}|{finding}|{fingerprint[:16]}"}
    outcome = monitor.log_security_event(FINDING_EVENT, details, severity, session=session, kv=kv)
    session.add(CertNotice(target_id=target.id, fingerprint=fingerprint, finding=finding[:64],
                           severity=severity, event_id=outcome.event_id, created_at=utcnow()))
    session.flush()
    return outcome.deliveries
