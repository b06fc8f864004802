"""Publishing jobs to the broker. The Celery task id is the job id, so Flower and the API
name the same job; the queue comes from the routes in ``tasks.routing``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session

from secops.errors import Unavailable
from tasks.app import app

BATCH = 500  # Redis commands per pipeline round trip (kombu's Producer.batch)


def enqueue(jobs: Iterable[tuple[str, str]]) -> None:
    """Publish ``(job_id, kind)`` pairs over one pooled connection; Unavailable if the broker is down."""
    try:
        with app.producer_or_acquire() as producer, producer.batch(max_size=BATCH):
            for job_id, kind in jobs:
                app.send_task(kind, args=[job_id], task_id=job_id, producer=producer,
                              retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2,
                                                        "interval_step": 0.5})
    except (OSError, ConnectionError) as exc:  # kombu's OperationalError is an OSError subclass
        raise Unavailable("the job queue is unavailable") from exc
    except Exception as exc:
        if exc.__class__.__module__.startswith(("kombu", "redis", "amqp")):
            raise Unavailable("the job queue is unavailable") from exc
        raise


def enqueue_or_fail(jobs: list[tuple[str, str]]) -> None:
    """Publish committed jobs; if the broker is down, fail them (never leave them queued
    with no message behind them) and raise Unavailable. Nothing to publish is a no-op."""
    if not jobs:
        return
    try:
        enqueue(jobs)
    except Unavailable:
        from secops.db.session import session_scope
        from secops.services.jobs import fail_job

        with session_scope() as session:
            for job_id, _ in jobs:
                fail_job(session=session, job_id=job_id, error="the job queue was unavailable")
        raise


AFTER_COMMIT = "secops.after_commit"


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run ``action`` once the job's transaction has committed (``tasks.base.run_job``
    commits the handler's outcome together with the job's completion); never if it
    rolls back."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


def publish_after_commit(session: Session, jobs: list[tuple[str, str]]) -> None:
    """Publish the jobs a handler created (alert deliveries) after the commit: a worker
    must never receive a job id the database does not have yet."""
    if jobs:
        after_commit(session, lambda: enqueue_or_fail(jobs))
