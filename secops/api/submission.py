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
from secops.config import get_settings
from secops.db.models import Job
from secops.errors import InvalidInput, PermissionDenied, Unavailable
from secops.services import audit, idempotency, ownership
from secops.services.audit import AuditContext
from secops.services.jobs import insert_jobs
from tasks.dispatch import enqueue_or_fail


class IdempotentRequest:
    """A request's ``Idempotency-Key``, the rules of ``services.idempotency`` at the HTTP
    boundary: :meth:`replay` answers a repeat with what the first request created, or
    reserves the key (committed, so a concurrent request gets 409); :meth:`record` notes
    what this request created, in its transaction; :meth:`forget` frees the key when the
    request failed, so the client may retry with it. Without a key, all three do nothing.
    """

    def __init__(self, session: Session, owner: str, key: str | None, body: Any) -> None:
        self.session, self.owner, self.key, self.body = session, owner, key, body
        self.reservation: idempotency.Reservation | None = None

    def replay(self) -> list[str] | None:
        if self.key is None:
            return None
        self.reservation = idempotency.reserve(
            session=self.session, owner=self.owner, key=self.key,
            body_hash=idempotency.request_hash(self.body))
        if self.reservation.job_ids is not None:
            return list(self.reservation.job_ids)
        self.session.commit()
        return None

    def record(self, ids: list[str]) -> None:
        if self.reservation is not None:
            idempotency.complete(session=self.session, record_id=self.reservation.record_id,
                                 job_ids=ids)

    def forget(self) -> None:
        if self.reservation is not None:
            idempotency.release(session=self.session, record_id=self.reservation.record_id)
            self.session.commit()


def submit_jobs(
    *,
    session: Session,
    principal: Principal,
    items: list[tuple[str, dict[str, Any]]],
    idempotency_key: str | None,
    body: Any,
    audit_ctx: AuditContext,
) -> list[Job]:
    cap = get_settings().ping_max_sleep
    for kind, params in items:
        if not principal.may_submit(kind):
            raise PermissionDenied("this key may not submit that job kind")
        if kind == "system.ping" and principal.role != "admin" and \
                _number((params or {}).get("sleep")) > cap:
            raise InvalidInput(f"system.ping may sleep at most {cap:g} s for this key's role")
        if principal.sees_only_own:
            ownership.check_job_params(session=session, actor=principal.actor,
                                       params=params or {})
    request = IdempotentRequest(session, principal.actor, idempotency_key, body)
    earlier = request.replay()
    if earlier is not None:
        return _load(session, earlier)
    try:
        jobs = insert_jobs(session=session, items=items, submitted_by=principal.actor,
                           idempotency_key=idempotency_key)
        ids = [j.id for j in jobs]
        request.record(ids)
        # Last before the commit: the audit entry locks the chain's head until then.
        audit.record(session=session, ctx=audit_ctx, action="jobs.submit",
                     target=f"job:{ids[0]}" if len(ids) == 1 else f"jobs:batch:{len(ids)}",
                     details={"kinds": sorted({j.kind for j in jobs}), "count": len(ids),
                              "job_ids": ids[:100]})
        session.commit()
    except BaseException:
        session.rollback()
        request.forget()
        raise
    try:
        enqueue_or_fail([(j.id, j.kind) for j in jobs])
    except Unavailable:
        request.forget()
        raise
    return jobs


def _number(value: Any) -> float:
    """A numeric param as a float (0 when absent; the kind's own model rejects the rest)."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def _load(session: Session, job_ids: list[str]) -> list[Job]:
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(job_ids))).all()}
    return [found[i] for i in job_ids if i in found]
