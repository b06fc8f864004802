"""Submitting jobs at the HTTP boundary: idempotency, commit, then publish.

Rows are committed before their messages are published, so a worker never receives a
job id the database does not know; if publishing fails the jobs are failed (never left
``queued`` with no message) and the client gets 503 and may retry with the same key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.api.deps import Principal
from secops.db.models import Job
from secops.errors import PermissionDenied, Unavailable
from secops.services import audit, idempotency
from secops.services.audit import AuditContext
from secops.services.jobs import create_job
from tasks.dispatch import enqueue_or_fail


def submit_jobs(
    *,
    session: Session,
    principal: Principal,
    items: list[tuple[str, dict[str, Any]]],
    idempotency_key: str | None,
    body: Any,
    audit_ctx: AuditContext,
) -> list[Job]:
    for kind, _ in items:
        if not principal.may_submit(kind):
            raise PermissionDenied("this key may not submit that job kind")
    reservation = None
    if idempotency_key is not None:
        reservation = idempotency.reserve(
            session=session, owner=principal.actor, key=idempotency_key,
            body_hash=idempotency.request_hash(body),
        )
        if reservation.job_ids is not None:
            return _load(session, reservation.job_ids)
        session.commit()  # make the reservation visible to concurrent requests (409)
    try:
        jobs = [
            create_job(session=session, kind=kind, params=params, submitted_by=principal.actor,
                       idempotency_key=idempotency_key)
            for kind, params in items
        ]
        session.flush()
        ids = [j.id for j in jobs]
        audit.record(session=session, ctx=audit_ctx, action="jobs.submit",
                     target=f"job:{ids[0]}" if len(ids) == 1 else f"jobs:batch:{len(ids)}",
                     details={"kinds": sorted({j.kind for j in jobs}), "count": len(ids),
                              "job_ids": ids[:100]})
        if reservation is not None:
            idempotency.complete(session=session, record_id=reservation.record_id,
                                 job_ids=[j.id for j in jobs])
        session.commit()
    except BaseException:
        session.rollback()
        if reservation is not None:
            idempotency.release(session=session, record_id=reservation.record_id)
            session.commit()
        raise
    try:
        enqueue_or_fail([(j.id, j.kind) for j in jobs])
    except Unavailable:
        if reservation is not None:
            idempotency.release(session=session, record_id=reservation.record_id)
            session.commit()
        raise
    return jobs


def _load(session: Session, job_ids: list[str]) -> list[Job]:
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids))).all()}
    return [found[i] for i in job_ids if i in found]
