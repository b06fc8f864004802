"""Celery beat scheduler over the ``schedules`` table.

``celery -A tasks beat`` uses it (``beat_scheduler`` in ``tasks.routing``). Each tick
re-reads the enabled schedules (cheap: one indexed query), fires the due ones through
``secops.services.schedules.fire_schedule`` (one ordinary job row each, published with
the job id as task id), runs the built-in reaper every ``reaper_interval`` seconds,
sends the audit retention task every ``audit_archive_interval`` seconds and the API
keys' use flush every ``key_use_flush_interval`` seconds, and sleeps until the next
schedule is due or ``beat_reload_interval`` passes, whichever is first, so schedules
created or changed while beat runs are picked up within seconds. At start-up it
publishes again the queued jobs schedules made: a beat killed between committing a run
and publishing it leaves one without a message.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from celery.beat import Scheduler

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.session import session_scope
from secops.services import schedules as schedule_service
from tasks.dispatch import enqueue_or_fail
from tasks.routing import (
    AUDIT_ARCHIVE_TASK,
    KEY_USE_TASK,
    PRIVACY_DEADLINES_TASK,
    REAP_TASK,
    RETENTION_TASK,
)

log = logging.getLogger("secops.beat")


class DatabaseScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The built-in tasks beat sends itself, and when each was last sent: the reaper
        # and the privacy due-date check at start-up, the others one interval after it.
        started = time.monotonic()
        self._last_sent = {REAP_TASK: 0.0, AUDIT_ARCHIVE_TASK: started, KEY_USE_TASK: started,
                           RETENTION_TASK: started, PRIVACY_DEADLINES_TASK: 0.0}
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        """Schedules live in the database; there is no local schedule file to load. The
        default ones families ask for are created here if missing."""
        try:
            from secops.services import cert_deploy

            with session_scope() as session:
                cert_deploy.ensure_default_schedule(session=session, settings=get_settings())
        except Exception:
            log.exception("default schedules not ensured; beat goes on")
        try:
            from tasks.dispatch import enqueue

            with session_scope() as session:
                runs = schedule_service.unpublished_runs(session=session)
            if runs:
                enqueue(runs)
                log.info("scheduled jobs published again at start-up", extra={"jobs": len(runs)})
        except Exception:
            log.exception("scheduled jobs not published again; the reaper will")

    @property
    def schedule(self) -> dict[str, Any]:
        return {}

    def sync(self) -> None:
        """Every run is recorded in the database as it fires; nothing to flush."""

    def tick(self, *args: Any, **kwargs: Any) -> float:
        settings = get_settings()
        reload_interval = settings.beat_reload_interval
        try:
            for task, interval in ((REAP_TASK, settings.reaper_interval),
                                   (AUDIT_ARCHIVE_TASK, settings.audit_archive_interval),
                                   (KEY_USE_TASK, settings.key_use_flush_interval),
                                   (RETENTION_TASK, settings.retention_interval),
                                   (PRIVACY_DEADLINES_TASK, settings.privacy_deadline_interval)):
                self._maybe_send(task, interval)
            next_due = self._fire_due(utcnow())
        except Exception:
            log.exception("beat tick failed; retrying")
            return reload_interval
        if next_due is None:
            return reload_interval
        wait = (next_due - utcnow()).total_seconds()
        return max(0.05, min(reload_interval, wait))

    def _fire_due(self, now: datetime) -> datetime | None:
        fired: list[tuple[str, str]] = []
        next_due: datetime | None = None
        with session_scope() as session:
            for schedule in schedule_service.enabled_schedules(session=session):
                due = schedule_service.next_run(schedule)
                if due <= now:
                    job = schedule_service.fire_schedule(session=session, schedule=schedule, now=now)
                    if job is not None:
                        session.flush()
                        fired.append((job.id, job.kind))
                    due = schedule_service.next_run(schedule)
                next_due = due if next_due is None or due < next_due else next_due
        if fired:
            enqueue_or_fail(fired)
            log.info("schedules fired", extra={"jobs": [job_id for job_id, _ in fired]})
        return next_due

    def _maybe_send(self, task: str, interval: float) -> None:
        if time.monotonic() - self._last_sent[task] >= interval:
            self._last_sent[task] = time.monotonic()
            self.app.send_task(task)
