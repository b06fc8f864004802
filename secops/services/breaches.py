"""The breach register (Art 33/34) and its 72-hour clock.

A breach is recorded with the time the controller became aware of it, its nature, the
categories and approximate numbers of subjects and records concerned, the likely
consequences, the measures taken or proposed and the DPO's contact. The supervisory
authority must be notified within 72 hours of awareness (Art 33(1)); a later
notification states the reasons for the delay. Beat's ``privacy.deadlines`` raises a
``privacy.breach_clock`` security event when fewer than each of
``SECOPS_PRIVACY_BREACH_ALERT_HOURS`` remain, and ``privacy.breach_overdue`` when the
clock has run out without a notification; the monitor turns them into alerts. The
notification report is exported as Markdown or JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import PrivacyBreach
from secops.errors import Conflict, InvalidInput, NotFound
from secops.services import audit, monitor
from secops.services.audit import AuditContext

DEADLINE = dt.timedelta(hours=72)
CLOCK, OVERDUE = "privacy.breach_clock", "privacy.breach_overdue"
for _rule in (
    monitor.AlertRule(
        CLOCK,
        frozenset({CLOCK}),
        "alert_key",
        0,
        86400,
        "high",
        "a breach's 72-hour notification clock is running out",
    ),
    monitor.AlertRule(
        OVERDUE,
        frozenset({OVERDUE}),
        "breach_id",
        0,
        86400,
        "critical",
        "a breach was not notified to the authority within 72 hours (Art 33)",
    ),
):
    monitor.register_rule(_rule)


def deadline(b: PrivacyBreach) -> dt.datetime:
    return b.aware_at + DEADLINE


def create(*, session: Session, ctx: AuditContext, data: dict[str, Any]) -> PrivacyBreach:
    aware = data["aware_at"]
    if aware.tzinfo is None:
        raise InvalidInput("aware_at needs a time zone")
    if aware > utcnow() + dt.timedelta(minutes=5):
        raise InvalidInput("aware_at lies in the future")
    breach = PrivacyBreach(**data, status="open", alerts_raised=[], created_by=ctx.actor, created_at=utcnow())
    session.add(breach)
    session.flush()
    audit.record(
        session=session,
        ctx=ctx,
        action="privacy.breach.recorded",
        target=f"breach:{breach.id}",
        details={
            "aware_at": aware.isoformat(),
            "subjects_approx": breach.subjects_approx,
            "high_risk": breach.high_risk,
        },
    )
    monitor.log_security_event(
        "privacy.breach", {"breach_id": breach.id, "title": breach.title[:100]}, "high", session=session
    )
    return breach


def get(*, session: Session, breach_id: str) -> PrivacyBreach:
    breach = session.get(PrivacyBreach, breach_id)
    if breach is None:
        raise NotFound("breach not found")
    return breach


def list_breaches(*, session: Session) -> list[PrivacyBreach]:
    return list(session.scalars(select(PrivacyBreach).order_by(PrivacyBreach.aware_at.desc()).limit(200)))


def notified(
    *,
    session: Session,
    ctx: AuditContext,
    breach: PrivacyBreach,
    who: str,
    at: dt.datetime | None,
    delay_reason: str | None,
) -> PrivacyBreach:
    """Record the notification of the authority (Art 33) or of the subjects (Art 34)."""
    at = at or utcnow()
    if who == "authority":
        if breach.authority_notified_at is not None:
            raise Conflict("the authority was already notified")
        if at > deadline(breach) and not (delay_reason or "").strip():
            raise InvalidInput("notified after 72 hours: give the reasons for the delay (Art 33(1))")
        breach.authority_notified_at, breach.delay_reason = at, (delay_reason or None)
        breach.status = "notified"
    elif who == "subjects":
        if breach.subjects_notified_at is not None:
            raise Conflict("the subjects were already notified")
        breach.subjects_notified_at = at
    else:
        raise InvalidInput("who must be authority or subjects")
    audit.record(
        session=session,
        ctx=ctx,
        action=f"privacy.breach.notified_{who}",
        target=f"breach:{breach.id}",
        details={"at": at.isoformat(), "late": at > deadline(breach)},
    )
    return breach


def check_clocks(
    *, session: Session, settings: Settings, kv: redis.Redis | None, now: dt.datetime | None = None
) -> list[tuple[str, str]]:
    """Events for open breaches whose clock passed an alert point or ran out; each once."""
    now = now or utcnow()
    deliveries: list[tuple[str, str]] = []
    for b in session.scalars(select(PrivacyBreach).where(PrivacyBreach.authority_notified_at.is_(None))):
        left = deadline(b) - now
        raised = list(b.alerts_raised)
        details = {"breach_id": b.id, "deadline": deadline(b).isoformat()}
        if left <= dt.timedelta(0):
            if "overdue" not in raised:
                raised.append("overdue")
                deliveries += monitor.log_security_event(
                    OVERDUE, details, "critical", session=session, kv=kv
                ).deliveries
        else:
            for hours in sorted(settings.privacy_breach_alert_hours, reverse=True):
                point = f"{hours}h"
                if left <= dt.timedelta(hours=hours) and point not in raised:
                    raised.append(point)
                    deliveries += monitor.log_security_event(
                        CLOCK,
                        {**details, "hours_left": hours, "alert_key": f"{b.id}:{point}"},
                        "high",
                        session=session,
                        kv=kv,
                    ).deliveries
        b.alerts_raised = raised
    return deliveries


def report(b: PrivacyBreach, fmt: str) -> str:
    """The notification report (Art 33(3)) as JSON or Markdown."""
    data = {
        "breach_id": b.id,
        "title": b.title,
        "aware_at": b.aware_at.isoformat(),
        "notification_deadline": deadline(b).isoformat(),
        "nature": b.nature,
        "categories": b.categories,
        "approximate_subjects": b.subjects_approx,
        "approximate_records": b.records_approx,
        "likely_consequences": b.consequences,
        "measures": b.measures,
        "dpo_contact": b.dpo_contact,
        "high_risk_to_subjects": b.high_risk,
        "authority_notified_at": b.authority_notified_at.isoformat() if b.authority_notified_at else None,
        "subjects_notified_at": b.subjects_notified_at.isoformat() if b.subjects_notified_at else None,
        "delay_reason": b.delay_reason,
    }
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt != "md":
        raise InvalidInput("format must be md or json")
    labels = [
        ("Breach", "breach_id"),
        ("Aware since", "aware_at"),
        ("Notify the authority by", "notification_deadline"),
        ("Categories of data", "categories"),
        ("Approximate number of data subjects", "approximate_subjects"),
        ("Approximate number of records", "approximate_records"),
        ("DPO contact", "dpo_contact"),
        ("High risk to the subjects (Art 34)", "high_risk_to_subjects"),
        ("Authority notified", "authority_notified_at"),
        ("Subjects notified", "subjects_notified_at"),
        ("Reasons for delay", "delay_reason"),
    ]
    lines = [f"# Personal data breach notification: {b.title}", ""]
    for label, key in labels:
        value = data[key]
        shown = ", ".join(value) if isinstance(value, list) else ("-" if value is None else str(value))
        lines.append(f"- **{label}**: {shown}")
    for heading, key in [
        ("Nature of the breach", "nature"),
        ("Likely consequences", "likely_consequences"),
        ("Measures taken or proposed", "measures"),
    ]:
        lines += ["", f"## {heading}", "", str(data[key])]
    return "\n".join(lines) + "\n"
