"""/v1/jobs: submit (one or a batch), list, get, cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime
from sqlalchemy import Row, bindparam, select

from secops.api.deps import (
    IdempotencyKey,
    Principal,
    ReadSession,
    WriteSession,
    in_thread,
    require,
    require_in_route,
    visible,
)
from secops.api.schemas import JobBatchCreate, JobBatchRead, JobCreate, JobList, JobRead
from secops.api.security import audit_context
from secops.api.submission import submit_jobs, submit_one
from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import get_engine
from secops.errors import InvalidInput, NotFound
from secops.services import audit
from secops.services import jobs as job_service

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
# The columns of JobRead, by id: a Core statement built once (the poll path's one query).
_READ_JOB = select(*(Job.__table__.c[name] for name in JobRead.model_fields)).where(
    Job.__table__.c.id == bindparam("b_id"))
SubmitsJobs = Annotated[Principal, Depends(require("jobs:submit"))]
ReadsJobs = Annotated[Principal, Depends(require("jobs:read"))]
ReadsJobsInRoute = Annotated[Callable[[], Principal], Depends(require_in_route("jobs:read"))]
CancelsJobs = Annotated[Principal, Depends(require("jobs:cancel"))]


@router.post("", status_code=202, response_model=JobRead, summary="Submit a job")
async def submit(
    body: JobCreate,
    request: Request,
    principal: SubmitsJobs,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # One worker-thread call for the session, the submission and the answer's JSON (the
    # single-job path is the hot one: see require() in secops.api.deps).
    # Submits that arrive together are committed together (secops.api.submission).
    def work() -> Response:
        job = submit_one(principal=principal, kind=body.kind, params=body.params,
                         idempotency_key=idempotency_key, body=body.model_dump(mode="json"),
                         audit_ctx=audit_context(request, principal.actor))
        return _job_json(job, 202)

    return await in_thread(work)


@router.post("/batch", status_code=202, response_model=JobBatchRead,
             summary="Submit many jobs in one request (all or none)")
def submit_batch(
    body: JobBatchCreate,
    request: Request,
    principal: SubmitsJobs,
    session: WriteSession,
    idempotency_key: IdempotencyKey = None,
) -> JobBatchRead:
    limit = get_settings().batch_max_jobs
    if len(body.jobs) > limit:
        raise InvalidInput(f"a batch holds at most {limit} jobs")
    jobs = submit_jobs(session=session, principal=principal,
                       items=[(j.kind, j.params) for j in body.jobs],
                       idempotency_key=idempotency_key, body=body.model_dump(mode="json"),
                       audit_ctx=audit_context(request, principal.actor))
    return JobBatchRead(jobs=[JobRead.model_validate(j) for j in jobs])


@router.get("", response_model=JobList, summary="List jobs, newest first")
def list_jobs(
    principal: ReadsJobs,
    session: ReadSession,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    submitted_by: Annotated[str | None, Query(max_length=80)] = None,
    since: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobList:
    if principal.sees_only_own:
        submitted_by = principal.actor
    page = job_service.list_jobs(session=session, kind=kind, status=status,
                                 submitted_by=submitted_by, since=since, limit=limit,
                                 offset=offset)
    return JobList(items=[JobRead.model_validate(j) for j in page.items], total=page.total,
                   limit=page.limit, offset=page.offset)


@router.get("/{job_id}", response_model=JobRead, summary="Get a job and its result")
async def get_job(job_id: str, authorise: ReadsJobsInRoute) -> Response:
    # Clients poll this: one worker-thread call authenticates, reads the job and renders
    # its JSON.
    def work() -> Response:
        principal = authorise()
        row = read_job(job_id)
        if row is None:
            raise NotFound("job not found")
        visible(row, principal, "job")
        return _job_json(row)

    return await in_thread(work)


def read_job(job_id: str) -> Row[Any] | None:
    """The JobRead columns of job ``job_id``, or None: on a plain connection of the read
    engine, no session (one statement, one snapshot)."""
    with get_engine(read_only=True).connect() as connection:
        # One statement needs no transaction of its own: on PostgreSQL it runs in
        # autocommit (one round trip instead of BEGIN, SELECT and ROLLBACK). SQLite's
        # reader keeps its deferred BEGIN (secops.db.session).
        if connection.dialect.name == "postgresql":
            connection = job_service.autocommit(connection)
        return connection.execute(_READ_JOB, {"b_id": job_id}).first()


def _job_json(job: Job | Row[Any], status: int = 200) -> Response:
    """The JobRead of ``job`` (a Job or a row of its columns) as the response (what
    response_model=JobRead would render)."""
    return Response(JobRead.model_validate(job).model_dump_json(), status_code=status,
                    media_type="application/json")


@router.post("/{job_id}/cancel", response_model=JobRead, summary="Cancel a queued or running job")
def cancel_job(
    job_id: str,
    request: Request,
    principal: CancelsJobs,
    session: WriteSession,
) -> Job:
    visible(job_service.get_job(session=session, job_id=job_id), principal, "job")
    job = job_service.cancel_job(session=session, job_id=job_id)
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="jobs.cancel", target=f"job:{job.id}", details={"kind": job.kind})
    session.commit()
    from tasks.app import app as celery_app

    celery_app.control.revoke(job_id, terminate=True, signal="SIGTERM")
    return job
