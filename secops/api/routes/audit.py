"""/v1/audit: the audit log for auditors and admins (read, export, verify)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from secops.api.deps import IdempotencyKey, Principal, ReadSession, WriteSession, require
from secops.api.schemas import JobRead
from secops.api.security import audit_context
from secops.api.security_schemas import AuditEntryRead, AuditList, SecurityEventRead
from secops.api.submission import submit_jobs
from secops.db.models import Job
from secops.db.session import get_read_sessionmaker
from secops.services import audit
from secops.services import events as event_service

router = APIRouter(tags=["audit"])
ReadsAudit = Annotated[Principal, Depends(require("audit:read"))]
ReadsEvents = Annotated[Principal, Depends(require("events:read"))]
VerifiesAudit = Annotated[Principal, Depends(require("audit:verify"))]


@router.get("/v1/audit", response_model=AuditList, summary="Audit entries, newest first")
def list_entries(
    principal: ReadsAudit,
    session: ReadSession,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    actor: Annotated[str | None, Query(max_length=120)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditList:
    rows, total = audit.list_entries(session=session, since=since, until=until, actor=actor,
                                     action=action, limit=limit, offset=offset)
    return AuditList(items=[AuditEntryRead(**audit.entry_dict(e)) for e in rows], total=total,
                     limit=limit, offset=offset)


@router.get("/v1/audit/export", summary="Export the audit log as JSON lines or CSV",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}})
def export(
    principal: ReadsAudit,
    format: Literal["jsonl", "csv"] = "jsonl",  # noqa: A002 - the query parameter's name
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> StreamingResponse:
    def body() -> Iterator[str]:
        # Its own short read session per page: the response outlives the route, and a
        # long export must not keep one snapshot open (SQLite's checkpoint waits for it).
        after: int | None = 0
        while after is not None:
            with get_read_sessionmaker()() as session:
                chunk, after = audit.export_page(session=session, fmt=format, after=after,
                                                 since=since, until=until)
            yield chunk

    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="secops-audit.{format}"'})


@router.get("/v1/security/events", response_model=list[SecurityEventRead],
            summary="Recent security events, newest first")
def list_events(
    principal: ReadsEvents,
    session: ReadSession,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SecurityEventRead]:
    return [SecurityEventRead.model_validate(e)
            for e in event_service.list_events(session=session, kind=kind, limit=limit)]


@router.post("/v1/audit/verify", status_code=202, response_model=JobRead,
             summary="Verify the audit chain (an audit.verify job; one at a time)",
             responses={409: {"description": "a verification is already queued or running"}})
def verify(
    request: Request,
    principal: VerifiesAudit,
    session: WriteSession,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    return submit_jobs(session=session, principal=principal, items=[("audit.verify", {})],
                       idempotency_key=idempotency_key, body={"kind": "audit.verify"},
                       audit_ctx=audit_context(request, principal.actor))[0]
