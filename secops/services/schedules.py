"""Schedules: recurring jobs stored in the database and fired by the beat scheduler.

A schedule has either a five-field cron expression (UTC) or an interval in seconds.
Beat re-reads the table every few seconds, so changes through the API or CLI take effect
without a restart. Firing is a conditional update of ``last_run_at`` followed by an
ordinary job row (``submitted_by = schedule:<id>``): two beat processes by mistake still
fire each run once. Missed runs (beat was down) fire once, not once per missed slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.db.base import utcnow
from secops.db.models import Job, Schedule
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import get_kind
from secops.services.jobs import create_job

MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 86400


def _validate_timing(cron: str | None, interval_seconds: int | None) -> None:
    if (cron is None) == (interval_seconds is None):
        raise InvalidInput("give exactly one of cron or interval_seconds")
    if cron is not None:
        fields = cron.split()
        if len(fields) != 5 or not croniter.is_valid(cron):
            raise InvalidInput("cron must be a valid five-field expression, e.g. '*/5 * * * *'")
    if interval_seconds is not None and not (
        MIN_INTERVAL_SECONDS <= interval_seconds <= MAX_INTERVAL_SECONDS
    ):
        raise InvalidInput(
            f"interval_seconds must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}"
        )


def create_schedule(
    *,
    session: Session,
    name: str,
    kind: str,
    params: dict[str, Any] | None,
    created_by: str,
    cron: str | None = None,
    interval_seconds: int | None = None,
    enabled: bool = True,
) -> Schedule:
    _validate_timing(cron, interval_seconds)
    spec = get_kind(kind)
    schedule = Schedule(
        name=name,
        kind=spec.name,
        params=spec.validate(params),
        cron=cron,
        interval_seconds=interval_seconds,
        enabled=enabled,
        created_by=created_by,
        total_run_count=0,
    )
    session.add(schedule)
    _flush_unique(session)
    return schedule


def _flush_unique(session: Session) -> None:
    """Write pending changes; a clash on the unique name is a Conflict, not a 500."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("a schedule with this name already exists") from None


def get_schedule(*, session: Session, schedule_id: str) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound("schedule not found")
    return schedule


def list_schedules(*, session: Session) -> list[Schedule]:
    return list(session.scalars(select(Schedule).order_by(Schedule.name)).all())


def update_schedule(*, session: Session, schedule_id: str, changes: dict[str, Any]) -> Schedule:
    """Apply a partial update; timing and params are re-validated as a whole."""
    schedule = get_schedule(session=session, schedule_id=schedule_id)
    changes = {k: v for k, v in changes.items() if v is not None or k in ("cron", "interval_seconds")}
    cron = changes.get("cron", schedule.cron)
    interval = changes.get("interval_seconds", schedule.interval_seconds)
    if "cron" in changes and changes["cron"] is not None and "interval_seconds" not in changes:
        interval = None
    if "interval_seconds" in changes and changes["interval_seconds"] is not None and (
        "cron" not in changes
    ):
        cron = None
    _validate_timing(cron, interval)
    spec = get_kind(changes.get("kind", schedule.kind))
    params = spec.validate(changes.get("params", schedule.params))
    schedule.kind, schedule.params = spec.name, params
    schedule.cron, schedule.interval_seconds = cron, interval
    if "enabled" in changes:
        schedule.enabled = bool(changes["enabled"])
    if "name" in changes:
        schedule.name = changes["name"]
    schedule.updated_at = utcnow()
    _flush_unique(session)
    return schedule


def delete_schedule(*, session: Session, schedule_id: str) -> None:
    session.delete(get_schedule(session=session, schedule_id=schedule_id))


def next_run(schedule: Schedule) -> datetime:
    """When ``schedule`` is next due (UTC), counting from its last run or its creation."""
    base = schedule.last_run_at or schedule.created_at
    if schedule.interval_seconds is not None:
        return base + timedelta(seconds=schedule.interval_seconds)
    assert schedule.cron is not None
    nxt: datetime = croniter(schedule.cron, base).get_next(datetime)
    return nxt


def enabled_schedules(*, session: Session) -> list[Schedule]:
    return list(session.scalars(select(Schedule).where(Schedule.enabled.is_(True))).all())


def fire_schedule(*, session: Session, schedule: Schedule, now: datetime) -> Job | None:
    """Record a run of ``schedule`` and create its job; None if another beat fired it first."""
    seen = schedule.last_run_at
    guard = Schedule.last_run_at.is_(None) if seen is None else Schedule.last_run_at == seen
    result = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule.id, Schedule.enabled.is_(True), guard)
        .values(last_run_at=now, total_run_count=Schedule.total_run_count + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return None
    return create_job(
        session=session,
        kind=schedule.kind,
        params=schedule.params,
        submitted_by=f"schedule:{schedule.id}",
    )


def unpublished_runs(*, session: Session, limit: int = 1000) -> list[tuple[str, str]]:
    """``(job id, kind)`` of queued jobs that schedules made: a beat killed between its
    commit and its publish leaves such a job without a message, so a starting beat
    publishes them again (a duplicate message is a no-op: the claim skips it)."""
    rows = session.execute(
        select(Job.id, Job.kind)
        .where(Job.status == "queued", Job.submitted_by.like("schedule:%"))
        .order_by(Job.created_at).limit(limit)).all()
    return [(job_id, kind) for job_id, kind in rows]
