"""The job task lifecycle, shared by every kind.

A job task is like a web view: it receives a job id, claims the job in the database
(counting the attempt, skipping finished or held jobs, failing poison jobs), calls one
handler with a fresh session, and records ``succeeded`` or a sanitised ``failed``.
Only transient errors (database unavailable or locked, a dependency Unavailable) are
retried, with capped exponential backoff; every other error fails the job at once.
"""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, configure_mappers

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import get_engine, session_scope
from secops.errors import SecOpsError, Unavailable
from secops.services import jobs as job_service
from tasks.app import app
from tasks.dispatch import AFTER_COMMIT
from tasks.routing import RETRY_BACKOFF_MAX, time_limit

log = logging.getLogger("secops.tasks")
Handler = Callable[[Session, Job], dict[str, Any]]
FailureHook = Callable[[str], None]  # called with the job id once a job has failed for good
MAX_RETRIES = 5
TRANSIENT = (OperationalError, Unavailable)


class JobTimeLimit(BaseException):  # noqa: N818 - named like Celery's SoftTimeLimitExceeded
    """A job's soft time limit as the worker's pool processes raise it.

    Celery's SoftTimeLimitExceeded is an Exception, and the parsers of untrusted files
    (olevba, pypdf...) catch Exception where they recover from bad input: a limit landing
    there was swallowed and the job ran on to the hard kill. No ``except Exception``
    catches a BaseException; :func:`run_job` fails the job with it cleanly."""


def _raise_time_limit(_signum: int, _frame: FrameType | None) -> None:
    raise JobTimeLimit()


def own_soft_time_limit() -> None:
    """In a pool process, raise :class:`JobTimeLimit` on the soft time limit's signal in
    place of Celery's exception. Only billiard's own handler is replaced (elsewhere, e.g.
    the solo pool's main process, the signal means something else)."""
    from billiard.pool import SIG_SOFT_TIMEOUT, soft_timeout_sighandler

    if SIG_SOFT_TIMEOUT is not None and signal.getsignal(SIG_SOFT_TIMEOUT) is soft_timeout_sighandler:
        signal.signal(SIG_SOFT_TIMEOUT, _raise_time_limit)


TIME_LIMITS = (SoftTimeLimitExceeded, JobTimeLimit)


def public_error(exc: BaseException) -> str:
    """What a job's ``error`` may say: our own messages, else only the exception type."""
    if isinstance(exc, SecOpsError):
        return exc.message
    if isinstance(exc, TIME_LIMITS):
        return "time limit exceeded"
    return f"internal error ({type(exc).__name__})"


def backoff(retries: int) -> float:
    return float(min(RETRY_BACKOFF_MAX, 2 ** (retries + 1)) * random.uniform(0.5, 1.0))  # noqa: S311


def run_job(task: Task, job_id: str, handler: Handler,
            on_failure: FailureHook | None = None) -> dict[str, Any] | None:
    settings = get_settings()
    kind = task.name
    delivery = task.request.delivery_info or {}
    own_soft_time_limit()
    limit, attempts, grace = (time_limit(settings, kind), settings.job_max_attempts,
                              settings.job_lease_grace)
    try:
        # The common case (a queued job) on a plain connection, without a session; every
        # other case through claim_job, which tries that statement again first.
        with get_engine().connect() as connection:
            job = job_service.claim_queued(connection=connection, job_id=job_id,
                                           time_limit=limit, max_attempts=attempts, grace=grace)
        claim = job_service.Claim.run
        if job is None:
            with session_scope() as session:
                claim, job = job_service.claim_job(session=session, job_id=job_id,
                                                   time_limit=limit, max_attempts=attempts,
                                                   grace=grace)
    except TRANSIENT as exc:
        if _is_permanent_db_error(exc):
            raise
        # The database is down or locked: nothing was claimed and the job is still queued.
        # Acknowledging the message would leave the job without one until the reaper's
        # republish, so it comes back after a backoff for as long as the outage lasts.
        log.warning("job not claimed, database unavailable; retrying",
                    extra={"job_id": job_id, "kind": kind, "error": type(exc).__name__})
        raise task.retry(countdown=backoff(task.request.retries), exc=exc,
                         max_retries=None) from None
    if claim is job_service.Claim.poison:
        _after_failure(on_failure, job_id)
    if claim is not job_service.Claim.run or job is None:
        log.info("job delivery skipped", extra={"job_id": job_id, "claim": claim.value,
                                                "redelivered": bool(delivery.get("redelivered"))})
        if claim is job_service.Claim.held and job is not None:
            _come_back_after_lease(task, job)
        return None
    try:
        # The claimed row (detached, params loaded) is the handler's input; the session opens
        # no transaction (SQLite: no write lock) until the handler itself touches the database.
        # The handler's outcome and the job's completion commit together; when the handler
        # never touched its session, the completion is committed alone (one statement on
        # PostgreSQL). What must follow the commit (publishing alert deliveries, dropping
        # submitted text) runs after.
        with session_scope() as session:
            result = handler(session, job)
            together = session.in_transaction()
            if together:
                finished = job_service.complete_job(session=session, job_id=job_id,
                                                    result=result)
            followers = session.info.pop(AFTER_COMMIT, [])
        if not together:
            with get_engine().connect() as connection:
                finished = job_service.complete_committed(connection=connection, job_id=job_id,
                                                          result=result)
        for follow in followers:
            follow()
        log.info("job succeeded" if finished else "job finished after cancel",
                 extra={"job_id": job_id, "kind": kind})
        return result
    except Retry:
        raise
    except TRANSIENT as exc:
        if task.request.retries < MAX_RETRIES and not _is_permanent_db_error(exc):
            log.warning("transient failure, retrying", extra={"job_id": job_id, "kind": kind,
                                                              "error": type(exc).__name__})
            _safely(job_service.release_job, job_id=job_id)
            raise task.retry(countdown=backoff(task.request.retries), exc=exc) from None
        _safely(job_service.fail_job, job_id=job_id, error=public_error(exc))
        log.error("job failed after retries", extra={"job_id": job_id, "kind": kind})
        _after_failure(on_failure, job_id)
        return None
    except (Exception, JobTimeLimit) as exc:
        log.exception("job failed", extra={"job_id": job_id, "kind": kind})
        _safely(job_service.fail_job, job_id=job_id, error=public_error(exc))
        _after_failure(on_failure, job_id)
        return None


# A job id no job has (job ids are random UUIDs, version 4): the warm-up's statements
# match no row.
_NO_JOB = "00000000-0000-0000-0000-000000000000"


def warm_up() -> None:
    """What each pool process would otherwise do on its first job, done once by the
    worker's main process before it forks them (they inherit it): configure the ORM's
    mappers, set the database dialect up on a first connection, and compile the claim
    and the completion by running them on a job id no job has (they change nothing).
    The connection is closed before the fork. A database that cannot be reached is
    only logged: each job connects on its own (and retries)."""
    configure_mappers()
    engine = get_engine()
    try:
        with engine.connect() as connection:
            job_service.claim_queued(connection=connection, job_id=_NO_JOB, time_limit=1,
                                     max_attempts=1)
            job_service.complete_committed(connection=connection, job_id=_NO_JOB, result={})
    except Exception:  # noqa: BLE001 - a warm-up: the first job connects again
        log.warning("could not prepare the database before starting the pool", exc_info=True)
    finally:
        engine.dispose()


def _come_back_after_lease(task: Task, job: Job) -> None:
    """Another delivery holds the job's lease: publish the message again to arrive when the
    lease ends, and let this one be acknowledged. RabbitMQ hands a dead worker's message
    to another worker at once, long before the dead worker's lease ends; dropping it would
    leave the job to the reaper. At the lease's end the copy finds the job finished (and
    does nothing) or takes it over; each held delivery leaves exactly one copy, so copies
    never multiply."""
    remaining = (job.lease_expires_at - utcnow()).total_seconds() if job.lease_expires_at else 0
    try:
        task.apply_async(args=[job.id], task_id=job.id, countdown=max(1.0, remaining + 1.0),
                         retries=task.request.retries)
    except Exception:  # noqa: BLE001 - the reaper still takes the job over when its lease ends
        log.warning("could not publish a held job again", extra={"job_id": job.id},
                    exc_info=True)


def _is_permanent_db_error(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and not exc.connection_invalidated and "locked" not in str(
        exc.orig
    ).lower() and "connect" not in str(exc.orig).lower()


def _safely(fn: Callable[..., Any], **kwargs: Any) -> None:
    """Record an outcome; if even that fails, the reaper will find the job by its lease."""
    try:
        with session_scope() as session:
            fn(session=session, **kwargs)
    except Exception:
        log.exception("could not record job outcome", extra=kwargs)


def _after_failure(hook: FailureHook | None, job_id: str) -> None:
    """Let the kind react to its job's final failure; if that fails, a sweep of the
    kind's own (such as ``privacy.deadlines``) finds the job by its status."""
    if hook is None:
        return
    try:
        hook(job_id)
    except Exception:
        log.exception("failure hook failed", extra={"job_id": job_id})


def job_task(kind: str, on_failure: FailureHook | None = None) -> Callable[[Handler], Task]:
    """Register ``handler`` as the Celery task for ``kind`` (named after the kind);
    ``on_failure`` runs after the job has failed for good (not before a retry)."""

    def decorator(handler: Handler) -> Task:
        @app.task(name=kind, bind=True)
        def task(self: Task, job_id: str) -> None:
            # The outcome is the job's row. Celery would otherwise carry the result to
            # the worker's main process, render it for its log line, and (with events
            # on) hand it to monitors, findings included.
            run_job(self, job_id, handler, on_failure)

        task.__doc__ = handler.__doc__
        return task  # type: ignore[no-any-return]

    return decorator
