"""Job lifecycle: create, read, list, cancel, and the state changes the task layer makes.

Every state change is a conditional ``UPDATE ... WHERE status = ...`` so that two
deliveries of one message, a cancel racing a worker, or the reaper racing a slow worker
can never both win. Services never commit: the route or task that called them does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from secops.db.base import new_id, utcnow
from secops.db.models import TERMINAL_STATUSES, Job, JobStatus
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import get_kind

MAX_ERROR_CHARS = 500
_JOBS = cast(Table, Job.__table__)
# Built once: every job runs these, and building a statement (SQLAlchemy's coercions and
# cache key) costs more than running it.
_CLAIM_QUEUED = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("b_id"), _JOBS.c.status == JobStatus.queued.value,
           _JOBS.c.attempts < bindparam("b_max_attempts"))
    .values(status=JobStatus.running.value, attempts=_JOBS.c.attempts + 1,
            started_at=bindparam("b_now"), updated_at=bindparam("b_now"),
            lease_expires_at=bindparam("b_lease"))
    .returning(_JOBS.c.kind, _JOBS.c.params, _JOBS.c.attempts, _JOBS.c.submitted_by,
               _JOBS.c.created_at)
)
# PostgreSQL: the same claim as one statement in autocommit whose commit does not wait for
# its WAL flush (set_config(..., true) is SET LOCAL synchronous_commit = off for the
# statement's own transaction). See claim_queued for why losing it in a crash is harmless.
_CLAIM_QUEUED_PG = _CLAIM_QUEUED.where(
    func.set_config("synchronous_commit", "off", True).is_not(None))
_FINISH = (
    update(_JOBS)
    # Two comparisons rather than IN: an IN list is expanded into the SQL at every run.
    .where(_JOBS.c.id == bindparam("b_id"),
           or_(_JOBS.c.status == JobStatus.queued.value,
               _JOBS.c.status == JobStatus.running.value))
    .values(status=bindparam("b_status"), result=bindparam("b_result"),
            error=bindparam("b_error"), finished_at=bindparam("b_now"),
            updated_at=bindparam("b_now"), lease_expires_at=None)
)


def create_job(
    *,
    session: Session,
    kind: str,
    params: dict[str, Any] | None,
    submitted_by: str,
    idempotency_key: str | None = None,
) -> Job:
    """Validate ``params`` for ``kind`` and add a queued job (not yet committed or enqueued)."""
    spec = get_kind(kind)
    if spec.single and session.scalar(select(Job.id).where(
            Job.kind == spec.name,
            Job.status.in_((JobStatus.queued.value, JobStatus.running.value))).limit(1)):
        raise Conflict(f"an {spec.name} job is already queued or running")
    job = Job(
        kind=spec.name,
        params=spec.validate(params),
        status=JobStatus.queued.value,
        attempts=0,
        submitted_by=submitted_by,
        idempotency_key=idempotency_key,
    )
    session.add(job)
    return job


# Every column a new job sets: one Core INSERT (no unit of work) for the API's submits.
_INSERT = insert(_JOBS).values(
    id=bindparam("b_id"), kind=bindparam("b_kind"), status=bindparam("b_status"),
    params=bindparam("b_params"), result=None, error=None, attempts=0,
    submitted_by=bindparam("b_submitted_by"), idempotency_key=bindparam("b_idempotency_key"),
    created_at=bindparam("b_now"), updated_at=bindparam("b_now"), started_at=None,
    finished_at=None, lease_expires_at=None)


def insert_jobs(
    *,
    session: Session,
    items: Sequence[tuple[str, dict[str, Any] | None]],
    submitted_by: str,
    idempotency_key: str | None = None,
) -> list[Job]:
    """What :func:`create_job` does for each ``(kind, params)``, written at once in the
    session's transaction: the rows are inserted (not yet committed or enqueued) and the
    returned jobs, outside the session, hold exactly what was written."""
    jobs = build_jobs(session=session, items=items, submitted_by=submitted_by,
                      idempotency_key=idempotency_key)
    insert_built(session=session, jobs=jobs)
    return jobs


def build_jobs(
    *,
    session: Session,
    items: Sequence[tuple[str, dict[str, Any] | None]],
    submitted_by: str,
    idempotency_key: str | None = None,
    pending: Sequence[Job] = (),
) -> list[Job]:
    """The queued jobs :func:`insert_jobs` would write for ``items``, checked (the kind,
    its parameters, and for a kind allowed once at a time, no such job queued or running
    in the database, in ``items`` or in ``pending``, the jobs about to be written with
    them), not yet written."""
    jobs: list[Job] = []
    for kind, params in items:
        spec = get_kind(kind)
        if spec.single and (any(j.kind == spec.name for j in (*pending, *jobs)) or
                            session.scalar(select(Job.id).where(
                                Job.kind == spec.name, Job.status.in_(
                                    (JobStatus.queued.value, JobStatus.running.value))
                            ).limit(1))):
            raise Conflict(f"an {spec.name} job is already queued or running")
        now = utcnow()
        jobs.append(Job(id=new_id(), kind=spec.name, status=JobStatus.queued.value,
                        params=spec.validate(params), result=None, error=None, attempts=0,
                        submitted_by=submitted_by, idempotency_key=idempotency_key,
                        created_at=now, updated_at=now, started_at=None, finished_at=None,
                        lease_expires_at=None))
    return jobs


def insert_built(*, session: Session, jobs: Sequence[Job]) -> None:
    """Insert the jobs :func:`build_jobs` returned, in one statement, in the session's
    transaction."""
    if jobs:
        session.connection().execute(_INSERT, [
            {"b_id": j.id, "b_kind": j.kind, "b_status": j.status, "b_params": j.params,
             "b_submitted_by": j.submitted_by, "b_idempotency_key": j.idempotency_key,
             "b_now": j.created_at} for j in jobs])


def job_rows(jobs: Sequence[Job]) -> tuple[Table, list[dict[str, Any]]]:
    """The jobs table and the rows :func:`insert_built` writes for ``jobs``, by column
    name (to be inserted by another statement, e.g. with their audit entries)."""
    return _JOBS, [
        {"id": j.id, "kind": j.kind, "status": j.status, "params": j.params, "result": None,
         "error": None, "attempts": 0, "submitted_by": j.submitted_by,
         "idempotency_key": j.idempotency_key, "created_at": j.created_at,
         "updated_at": j.created_at, "started_at": None, "finished_at": None,
         "lease_expires_at": None} for j in jobs]


def get_job(*, session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("job not found")
    return job


@dataclass(frozen=True)
class JobPage:
    items: list[Job]
    total: int
    limit: int
    offset: int


def list_jobs(
    *,
    session: Session,
    kind: str | None = None,
    status: str | None = None,
    submitted_by: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> JobPage:
    """Newest first, filtered, with offset pagination."""
    if status is not None and status not in JobStatus.__members__:
        raise InvalidInput(f"unknown status; one of {', '.join(JobStatus.__members__)}")
    query = select(Job)
    if kind:
        query = query.where(Job.kind == kind)
    if status:
        query = query.where(Job.status == status)
    if submitted_by:
        query = query.where(Job.submitted_by == submitted_by)
    if since:
        query = query.where(Job.created_at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(
        query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    ).all()
    return JobPage(items=list(items), total=total, limit=limit, offset=offset)


def cancel_job(*, session: Session, job_id: str) -> Job:
    """Cancel a queued or running job; a finished job cannot be cancelled (409)."""
    job = get_job(session=session, job_id=job_id)
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.queued.value, JobStatus.running.value]))
        .values(status=JobStatus.cancelled.value, finished_at=now, updated_at=now,
                lease_expires_at=None)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(f"job is already {job.status}")
    session.refresh(job)
    return job


class Claim(enum.Enum):
    """What a delivered message should do with its job."""

    run = "run"  # this delivery owns the job now
    done = "done"  # the job already finished or was cancelled: acknowledge and do nothing
    held = "held"  # another live delivery holds the lease: do nothing
    poison = "poison"  # too many deliveries started and never finished: failed
    missing = "missing"  # no such job row


def claim_queued(
    *, connection: Connection, job_id: str, time_limit: int, max_attempts: int, grace: int = 30
) -> Job | None:
    """The common claim on a connection of its own, committed: a queued job with attempts
    left becomes this delivery's (the job, detached, as :func:`claim_job` returns it), or
    None (call :func:`claim_job`, which decides every other case).

    On PostgreSQL it is one statement in autocommit that does not wait for its WAL flush.
    A database crash may then forget the claim (never half of it): the job reads
    ``queued`` again with one attempt fewer while this delivery runs it; the finish's
    commit, which does wait for its flush, still records the outcome (it accepts a queued
    job), and a delivery that dies first is delivered again (its message is acknowledged
    only once the task returns) and claims the job again. SQLite commits without a flush
    in WAL mode (``synchronous=NORMAL``) anyway.
    """
    now = utcnow()
    values = {"b_id": job_id, "b_max_attempts": max_attempts, "b_now": now,
              "b_lease": now + timedelta(seconds=time_limit + grace)}
    if connection.dialect.name == "postgresql":
        row = autocommit(connection).execute(_CLAIM_QUEUED_PG, values).first()
    else:
        with connection.begin():
            row = connection.execute(_CLAIM_QUEUED, values).first()
    if row is None:
        return None
    return Job(id=job_id, kind=row.kind, params=row.params, attempts=row.attempts,
               submitted_by=row.submitted_by, created_at=row.created_at,
               status=JobStatus.running.value, started_at=now, updated_at=now,
               lease_expires_at=values["b_lease"])


def claim_job(
    *, session: Session, job_id: str, time_limit: int, max_attempts: int, grace: int = 30
) -> tuple[Claim, Job | None]:
    """Take a job for this delivery, counting the attempt in the database.

    A job still ``running`` whose lease has expired belongs to a worker that died (its hard
    time limit would otherwise have ended it), so the delivery takes over, unless the job
    has already started ``max_attempts`` times: then it is failed as poison.
    """
    now = utcnow()
    lease = now + timedelta(seconds=time_limit + grace)
    # Fast path, one statement: a queued job with attempts left becomes ours.
    row = session.connection().execute(_CLAIM_QUEUED, {
        "b_id": job_id, "b_max_attempts": max_attempts, "b_now": now, "b_lease": lease}).first()
    if row is not None:
        return Claim.run, Job(id=job_id, kind=row.kind, params=row.params, attempts=row.attempts,
                              submitted_by=row.submitted_by, created_at=row.created_at,
                              status=JobStatus.running.value, started_at=now, updated_at=now,
                              lease_expires_at=lease)
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        return Claim.missing, None
    if job.status in TERMINAL_STATUSES:
        return Claim.done, job
    if job.status == JobStatus.running.value and job.lease_expires_at and job.lease_expires_at > now:
        return Claim.held, job
    if job.attempts >= max_attempts:
        _finish(session, job.id, JobStatus.failed,
                error=f"poison job: started {job.attempts} times without finishing", now=now)
        return Claim.poison, job
    seen_status, seen_attempts = job.status, job.attempts
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == seen_status, Job.attempts == seen_attempts)
        .values(status=JobStatus.running.value, attempts=seen_attempts + 1, started_at=now,
                updated_at=now, lease_expires_at=now + timedelta(seconds=time_limit + grace))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return Claim.held, job
    job.status, job.attempts, job.started_at = JobStatus.running.value, seen_attempts + 1, now
    job.updated_at, job.lease_expires_at = now, now + timedelta(seconds=time_limit + grace)
    session.expunge(job)  # the handler's copy: detached, with what this claim just wrote
    return Claim.run, job


def complete_job(*, session: Session, job_id: str, result: dict[str, Any]) -> bool:
    """Record success; False if the job was cancelled or taken over meanwhile."""
    return _finish(session, job_id, JobStatus.succeeded, result=result)


def complete_committed(*, connection: Connection, job_id: str, result: dict[str, Any]) -> bool:
    """:func:`complete_job` on a connection of its own, committed at once: for a handler
    that wrote nothing, so that the job's row is all its outcome. On PostgreSQL it is one
    statement in autocommit (one round trip instead of BEGIN, UPDATE and COMMIT; its
    commit waits for the WAL flush like any other), on SQLite one write transaction."""
    values = {"b_id": job_id, "b_status": JobStatus.succeeded.value, "b_result": result,
              "b_error": None, "b_now": utcnow()}
    if connection.dialect.name == "postgresql":
        return bool(autocommit(connection).execute(_FINISH, values).rowcount)
    with connection.begin():
        return bool(connection.execute(_FINISH, values).rowcount)


def autocommit(connection: Connection) -> Connection:
    """``connection`` in autocommit (each statement commits as it ends), as it may
    already be: its isolation level can only change outside a transaction."""
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.execution_options(isolation_level="AUTOCOMMIT")
    return connection


def fail_job(*, session: Session, job_id: str, error: str) -> bool:
    """Record failure with a sanitised, bounded message."""
    return _finish(session, job_id, JobStatus.failed, error=error[:MAX_ERROR_CHARS])


def release_job(*, session: Session, job_id: str) -> None:
    """Put a running job back to ``queued`` (before a retry), so the next delivery claims it."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running.value)
        .values(status=JobStatus.queued.value, lease_expires_at=None, updated_at=utcnow())
    )


def _finish(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """One conditional UPDATE: only a queued or running job can finish, and only once."""
    now = now or utcnow()
    outcome = session.connection().execute(_FINISH, {
        "b_id": job_id, "b_status": status.value, "b_result": result, "b_error": error,
        "b_now": now})
    return bool(outcome.rowcount)


def find_stuck_jobs(*, session: Session, limit: int = 500) -> list[Job]:
    """Running jobs whose lease expired: their worker died or lost its broker connection."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.status == JobStatus.running.value, Job.lease_expires_at < utcnow())
            .order_by(Job.lease_expires_at)
            .limit(limit)
        ).all()
    )


def find_stale_queued(*, session: Session, older_than: timedelta, limit: int = 1000) -> list[Job]:
    """Jobs ``queued`` (or last re-published) longer ago than ``older_than``: their message
    may have been lost with the broker's memory. Publishing again is harmless: the
    claim makes a second delivery of a job that already ran a no-op."""
    return list(session.scalars(
        select(Job).where(Job.status == JobStatus.queued.value,
                          Job.updated_at < utcnow() - older_than)
        .order_by(Job.updated_at).limit(limit)).all())


def queued_ids_before(*, session: Session, before: datetime, limit: int = 100_000) -> set[str]:
    """The ids of the jobs ``queued`` (or last re-published) before ``before``."""
    return set(session.scalars(
        select(Job.id).where(Job.status == JobStatus.queued.value, Job.updated_at < before)
        .limit(limit)))


def still_queued(*, session: Session, job_ids: Iterable[str]) -> list[Job]:
    """Those of ``job_ids`` that are ``queued`` now."""
    wanted = sorted(set(job_ids))
    if not wanted:
        return []
    return list(session.scalars(
        select(Job).where(Job.id.in_(wanted), Job.status == JobStatus.queued.value)).all())


def mark_republished(*, session: Session, jobs: list[Job]) -> None:
    """Start the jobs' wait again, so each is re-published at most once per period."""
    now = utcnow()
    for job in jobs:
        job.updated_at = now


def requeue_or_fail_stuck(*, session: Session, job: Job, max_attempts: int) -> JobStatus:
    """Decide the fate of one stuck job: failed as poison, or back to ``queued``."""
    if job.attempts >= max_attempts:
        _finish(session, job.id, JobStatus.failed,
                error=f"poison job: started {job.attempts} times without finishing")
        return JobStatus.failed
    release_job(session=session, job_id=job.id)
    return JobStatus.queued
