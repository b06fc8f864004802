"""System kinds: diagnostics, the reaper of stuck jobs, key-use flushes and retention."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from secops.config import Settings, get_settings
from secops.db.models import Job
from secops.db.session import session_scope
from secops.services import audit, retention
from secops.services import jobs as job_service
from secops.services import keys as key_service
from secops.services.redisconn import get_redis
from secops.services.storage import get_store
from tasks import deadletter, lostmessages
from tasks.app import app
from tasks.base import job_task
from tasks.dispatch import enqueue
from tasks.routing import KEY_USE_TASK, REAP_TASK, RETENTION_TASK

log = logging.getLogger("secops.tasks")


@job_task("system.ping")
def ping(session: Session, job: Job) -> dict[str, Any]:
    """Echo the params; ``sleep`` holds the worker, ``fail`` fails the job on purpose."""
    params = dict(job.params)
    if params.get("sleep"):
        time.sleep(float(params["sleep"]))
    if params.get("fail"):
        raise RuntimeError("diagnostic failure requested")
    return {"echo": params}


@app.task(name=REAP_TASK, ignore_result=True)
def reap() -> dict[str, int]:
    """Re-queue or fail jobs whose lease expired (their worker died or lost the broker),
    publish again the jobs whose message a restarted Redis broker lost
    (``tasks.lostmessages``), and the jobs queued for longer than
    SECOPS_QUEUED_REPUBLISH_AFTER (their message may have been lost another way)."""
    settings = get_settings()
    requeue: list[tuple[str, str]] = []
    failed = _fail_dead_lettered(settings)
    with session_scope() as session:
        for job in job_service.find_stuck_jobs(session=session):
            status = job_service.requeue_or_fail_stuck(
                session=session, job=job, max_attempts=settings.job_max_attempts
            )
            if status == job_service.JobStatus.queued:
                requeue.append((job.id, job.kind))
            else:
                failed += 1
        stale = job_service.find_stale_queued(
            session=session, older_than=timedelta(seconds=settings.queued_republish_after))
        job_service.mark_republished(session=session, jobs=stale)
        republish = [(job.id, job.kind) for job in stale]
    republish += lostmessages.lost_after_restart(settings)
    if requeue or republish:
        enqueue(requeue + republish)
    if requeue or failed or republish:
        log.warning("reaped stuck jobs", extra={"requeued": len(requeue), "failed": failed,
                                                "republished": len(republish)})
    return {"requeued": len(requeue), "failed": failed, "republished": len(republish)}


def _fail_dead_lettered(settings: Settings) -> int:
    """RabbitMQ: fail the jobs whose message went past the delivery limit (tasks.deadletter)."""
    if not settings.broker_is_amqp():
        return 0
    failed = 0
    with app.connection_for_write() as connection:
        job_ids, ack = deadletter.drain(settings, connection)
        if job_ids:
            error = (f"its message was dead-lettered: returned to the broker more than "
                     f"{settings.broker_delivery_limit} times without finishing")
            with session_scope() as session:
                failed = sum(job_service.fail_job(session=session, job_id=job_id, error=error)
                             for job_id in job_ids)
            log.warning("failed dead-lettered jobs", extra={"dead_letters": len(job_ids),
                                                            "failed": failed})
        ack()
    return failed


@app.task(name=KEY_USE_TASK, ignore_result=True)
def flush_key_use() -> dict[str, int]:
    """Fold the API keys' use counted in Redis into their rows (see services.keys)."""
    with session_scope() as session, key_service.pending_use(get_redis()) as pending:
        changed = key_service.apply_use(session=session, pending=pending)
        session.commit()
    return {"keys": changed}


@app.task(name=RETENTION_TASK, ignore_result=True)
def prune() -> dict[str, Any]:
    """Retention: delete what is past its table's setting (see services.retention); the
    stored content of pruned files is removed once the deletion is committed."""
    settings = get_settings()
    with session_scope() as session:
        result = retention.prune(session=session, settings=settings)
        audit.record(session=session, ctx=audit.AuditContext(actor="system:retention"),
                     action="retention.prune", target="retention", details=result.as_dict())
    retention.remove_files(store=get_store(settings), sha256s=result.files_to_remove)
    log.info("retention pruned", extra=result.as_dict())
    return result.as_dict()
