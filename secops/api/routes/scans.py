"""/v1/scans (upload files to scan, read a scan) and /v1/quarantine (admin only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from secops.api.deps import IdempotencyKey, Principal, db_read_session, db_session, require, visible
from secops.api.scan_schemas import (
    MULTIPART_FILES,
    ScanBatchRead,
    ScanFindingRead,
    ScanRead,
    StoredFileRead,
)
from secops.api.security import audit_context, report_event
from secops.api.submission import IdempotentRequest
from secops.api.uploads import MultipartUpload, boundary_of, receive_upload
from secops.config import get_settings
from secops.db.models import ScanResult, StoredFile
from secops.errors import InvalidInput, PermissionDenied, Unavailable
from secops.services import quarantine, scans
from secops.services.audit import AuditContext
from secops.services.storage import get_store
from tasks.dispatch import enqueue_or_fail

router = APIRouter(tags=["scans"])
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


def scan_reads(session: Session, items: list[ScanResult],
               details: scans.ScanDetails | None = None) -> list[ScanRead]:
    """Scans with their findings, job outcome and file state, in three queries in all
    (none when the caller already has the ``details``)."""
    details = details or scans.scan_details(session=session, scans=items)
    # ``cached_from`` names the earlier scan a verdict was copied from; shown only when the
    # same key submitted it (another tenant's scan id is not this caller's business).
    sources = {s.cached_from for s in items if s.cached_from}
    submitters = dict(session.execute(
        select(ScanResult.id, ScanResult.submitted_by).where(ScanResult.id.in_(sources))
    ).tuples().all()) if sources else {}
    out = []
    for scan in items:
        status, error = scan.status, scan.error
        job_status, job_error = details.jobs.get(scan.job_id or "", (None, None))
        if status == "pending" and job_status in ("failed", "cancelled"):
            status, error = "failed", job_error or job_status
        out.append(ScanRead(
            id=scan.id, job_id=scan.job_id, status=status, error=error, sha256=scan.sha256,
            filename=scan.filename, size=scan.size, source=scan.source, path=scan.path,
            verdict=scan.verdict, mime=scan.mime, description=scan.description,
            ruleset_version=scan.ruleset_version, cached=scan.cached,
            cached_from=scan.cached_from
            if submitters.get(scan.cached_from or "") == scan.submitted_by else None,
            file_state=details.states.get(scan.sha256) if scan.source != "directory" else None,
            submitted_by=scan.submitted_by, created_at=scan.created_at,
            completed_at=scan.completed_at,
            findings=[ScanFindingRead.model_validate(f) for f in details.findings.get(scan.id, [])]))
    return out


def scan_read(session: Session, scan: ScanResult) -> ScanRead:
    return scan_reads(session, [scan])[0]


def _submit(session: Session, upload: MultipartUpload, principal: Principal, rescan: bool,
            ctx: AuditContext, idempotency_key: str | None) -> ScanBatchRead:
    """Store the files and add their scans and jobs; commit, then publish.

    With an ``Idempotency-Key`` (the same rules as ``POST /v1/jobs``) the request is
    identified by its files' names, SHA-256 digests and sizes and ``rescan``: a repeat
    returns the scans the first request created, and its copies of the files are dropped.
    """
    settings = get_settings()
    version = scans.get_scanner(settings).ruleset_version
    request = IdempotentRequest(session, principal.actor, idempotency_key, {
        "route": "POST /v1/scans", "rescan": rescan,
        "files": [[f.filename, f.sha256, f.size] for f in upload.files]})
    try:
        earlier = request.replay()  # for this route: the scan ids the first request made
        if earlier is not None:
            upload.discard()
            found = {s.id: s for s in scans.get_scans(session=session, scan_ids=earlier)}
            return ScanBatchRead(scans=scan_reads(session, [found[i] for i in earlier if i in found]))
        submission = scans.submit_uploads(
            session=session, store=get_store(settings), staged=upload.files,
            submitted_by=principal.actor, rescan=rescan, ruleset_version=version, audit_ctx=ctx,
            job_max_files=settings.scan_job_max_files, job_max_bytes=settings.scan_job_max_bytes)
        request.record([scan.id for scan in submission.scans])
        # The answer is read in the same transaction: what it says is what is committed
        # (or nothing is, and the client gets the error instead).
        answer = ScanBatchRead(scans=scan_reads(session, submission.scans, submission.details))
        session.commit()
    except BaseException:
        session.rollback()
        upload.discard()
        request.forget()
        raise
    try:
        enqueue_or_fail(submission.jobs)
    except Unavailable:
        request.forget()  # the client may retry with the same key
        raise
    for kind, details, severity in submission.events:
        report_event(kind, details, severity)
    return answer


@router.post("/v1/scans", status_code=202, response_model=ScanBatchRead,
             summary="Upload one or more files to scan (multipart field 'file')",
             openapi_extra=MULTIPART_FILES)
async def submit(
    request: Request,
    principal: Principal = Depends(require("scans:submit")),
    session: Session = Depends(db_session),
    rescan: Annotated[bool, Query(description="scan again even if a cached verdict exists")] = False,
    idempotency_key: IdempotencyKey = None,
) -> ScanBatchRead:
    settings = get_settings()
    boundary = boundary_of(request)
    if not principal.may_submit(scans.SCAN_KIND):
        raise PermissionDenied("this key may not submit that job kind")
    store = await run_in_threadpool(get_store, settings)
    await run_in_threadpool(scans.get_scanner, settings)  # compile the rules before receiving
    upload = MultipartUpload(boundary, store=store, max_file_bytes=settings.scan_max_upload_bytes,
                             max_files=settings.scan_max_files_per_upload)
    await receive_upload(request, upload)
    rescan = rescan or upload.fields.get("rescan", "").lower() in ("1", "true", "yes")
    return await run_in_threadpool(_submit, session, upload, principal, rescan,
                                   audit_context(request, principal.actor), idempotency_key)


@router.get("/v1/scans", response_model=ScanBatchRead,
            summary="Several scans by id (comma-separated, at most 100), in the order given")
def get_scans(
    ids: Annotated[str, Query(max_length=100 * 37, description="scan ids, comma-separated")],
    finished: Annotated[bool, Query(description="only those no longer pending (complete or "
                                                "failed): a poll answered without the rest")] = False,
    principal: Principal = Depends(require("scans:read")),
    session: Session = Depends(db_read_session),
) -> ScanBatchRead:
    wanted = [i.strip() for i in ids.split(",") if i.strip()]
    if not wanted or len(wanted) > 100:
        raise InvalidInput("give 1 to 100 scan ids")
    found = {s.id: s for s in scans.get_scans(session=session, scan_ids=wanted, finished=finished)
             if principal.can_see(s.submitted_by)}
    return ScanBatchRead(scans=scan_reads(session, [found[i] for i in wanted if i in found]))


@router.get("/v1/scans/{scan_id}", response_model=ScanRead,
            summary="A scan: status, verdict, findings, whether it was cached")
def get_scan(
    scan_id: Annotated[str, Path(max_length=36)],
    principal: Principal = Depends(require("scans:read")),
    session: Session = Depends(db_read_session),
) -> ScanRead:
    return scan_read(session, visible(scans.get_scan(session=session, scan_id=scan_id),
                                      principal, "scan"))


@router.get("/v1/quarantine", response_model=list[StoredFileRead],
            summary="Quarantined files, newest first")
def list_quarantine(
    principal: Principal = Depends(require("quarantine:manage")),
    session: Session = Depends(db_read_session),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StoredFile]:
    return quarantine.list_quarantine(session=session, limit=limit)


def _decide(decide: Callable[..., StoredFile], sha256: str, request: Request,
            principal: Principal, session: Session) -> StoredFile:
    """Record an admin's decision (audited), commit it, then carry it out on the file."""
    row = decide(session=session, sha256=sha256, ctx=audit_context(request, principal.actor))
    session.commit()
    quarantine.apply_decision(session=session, store=get_store(get_settings()), row=row)
    session.commit()
    return row


@router.post("/v1/quarantine/{sha256}/release", response_model=StoredFileRead,
             summary="Release a quarantined file (audited)")
def release(
    sha256: Sha256,
    request: Request,
    principal: Principal = Depends(require("quarantine:manage")),
    session: Session = Depends(db_session),
) -> StoredFile:
    return _decide(quarantine.release, sha256, request, principal, session)


@router.delete("/v1/quarantine/{sha256}", response_model=StoredFileRead,
               summary="Delete a quarantined file's content for good (audited)")
def delete(
    sha256: Sha256,
    request: Request,
    principal: Principal = Depends(require("quarantine:manage")),
    session: Session = Depends(db_session),
) -> StoredFile:
    return _decide(quarantine.delete, sha256, request, principal, session)
