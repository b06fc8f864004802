"""Audit kinds: the ``audit.verify`` job and the retention task that beat sends."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import get_read_sessionmaker, session_scope
from secops.errors import Conflict
from secops.services import audit as audit_service
from secops.services import monitor
from secops.services.redisconn import get_redis
from tasks.app import app
from tasks.base import job_task
from tasks.dispatch import enqueue_or_fail
from tasks.routing import AUDIT_ARCHIVE_TASK

log = logging.getLogger("secops.tasks")


def _report(kind: str, details: dict[str, Any], severity: str) -> None:
    with session_scope() as session:
        outcome = monitor.log_security_event(kind, details, severity, session=session,
                                             kv=get_redis())
    enqueue_or_fail(outcome.deliveries)


@job_task("audit.verify")
def verify(session: Session, job: Job) -> dict[str, Any]:
    """Walk the chain; a broken link raises a critical security event (and an alert).

    The walk reads through a read session, one short transaction per batch: it never
    holds SQLite's write lock, and appends go on meanwhile."""
    session.commit()  # the job's own transaction ends before the walk
    reader = get_read_sessionmaker()()
    try:
        result = audit_service.verify_anchored(
            session=reader, release=True,
            anchor_file=get_settings().audit_anchor_file).as_dict()
    finally:
        reader.rollback()
        reader.close()
    log.info("audit chain verified", extra={"ok": result["ok"], "head_seq": result["head_seq"],
                                            "head_hash": result["head_hash"]})
    if not result["ok"]:
        _report("audit.chain_broken", {"subject": "audit_log", **result["first_broken"]},
                "critical")
    return result


@app.task(name=AUDIT_ARCHIVE_TASK, ignore_result=True)
def archive() -> dict[str, Any]:
    """Retention: archive and prune entries older than SECOPS_AUDIT_RETENTION_DAYS."""
    settings = get_settings()
    before = utcnow() - timedelta(days=settings.audit_retention_days)
    try:
        with session_scope() as session:
            done = audit_service.archive_and_prune(
                session=session, before=before, archive_dir=settings.data_dir / "audit-archive")
    except Conflict:
        _report("audit.chain_broken", {"subject": "audit_log", "during": "retention"}, "critical")
        return {"archived": 0, "refused": "chain does not verify"}
    if done is None:
        return {"archived": 0}
    log.info("audit entries archived", extra={"through_seq": done.through_seq,
                                              "archived": done.archived, "archive": done.archive})
    return {"archived": done.archived, "through_seq": done.through_seq}
