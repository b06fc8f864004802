"""/v1/dlp: classify text or files as jobs, read the findings, redact text synchronously.

Submitted text and redaction input are never logged, never put into a job's params and
never echoed in an error.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from secops.api.deps import Principal, db_read_session, db_session, require, visible
from secops.api.scan_schemas import (
    MULTIPART_FILES,
    DlpFindingRead,
    DlpScanCreate,
    DlpScanRead,
    RedactCreate,
    RedactedFinding,
    RedactRead,
)
from secops.api.security import audit_context
from secops.api.uploads import MultipartUpload, boundary_of, receive_upload
from secops.config import get_settings
from secops.db.models import DlpScan, Job, ScanResult, StoredFile
from secops.errors import InvalidInput, PayloadTooLarge, PermissionDenied
from secops.services import audit, ownership
from secops.services import dlp as dlp_service
from secops.services.audit import AuditContext
from secops.services.storage import get_store
from tasks.dispatch import enqueue_or_fail

router = APIRouter(prefix="/v1/dlp", tags=["dlp"])
DLP_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": DlpScanCreate.model_json_schema()},
    **MULTIPART_FILES["requestBody"]["content"]}}}


def dlp_read(session: Session, scan: DlpScan) -> DlpScanRead:
    out = DlpScanRead.model_validate(scan)
    if scan.status == "pending" and scan.job_id:
        job = session.get(Job, scan.job_id)
        if job is not None and job.status in ("failed", "cancelled"):
            out.status, out.error = "failed", job.error or job.status
    elif scan.status == "failed":
        out.error = "; ".join(scan.errors) or "unreadable"
    if scan.sha256 is not None and scan.source != "text":
        stored = session.get(StoredFile, scan.sha256)
        out.file_state = stored.state if stored is not None else None
    if scan.scan_id is not None:
        out.verdict = session.scalar(select(ScanResult.verdict).where(ScanResult.id == scan.scan_id))
    out.findings = [DlpFindingRead.model_validate(f)
                    for f in dlp_service.findings(session=session, dlp_scan_id=scan.id)]
    return out


async def _json_body(request: Request, limit: int) -> DlpScanCreate:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge("request body is too large")
    try:
        return DlpScanCreate.model_validate(json.loads(body))
    except (ValueError, UnicodeDecodeError) as exc:
        errors = ([{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                   for e in exc.errors(include_url=False, include_input=False)]
                  if isinstance(exc, ValidationError) else [])
        raise InvalidInput("request body is not a valid DLP scan request",
                           details={"errors": errors}) from None


def _submit(session: Session, principal: Principal, ctx: AuditContext,
            body: DlpScanCreate | None, upload: MultipartUpload | None) -> DlpScanRead:
    settings = get_settings()
    store = get_store(settings)
    try:
        if upload is not None:
            scan, job = dlp_service.submit_upload(session=session, store=store,
                                                  staged=upload.files[0],
                                                  submitted_by=principal.actor)
        elif body is not None and body.text is not None:
            scan, job = dlp_service.submit_text(session=session, store=store, text=body.text,
                                                name=body.name, submitted_by=principal.actor,
                                                max_chars=settings.dlp_max_text_chars)
        else:
            assert body is not None and body.sha256 is not None
            if principal.sees_only_own:
                ownership.check_content(session=session, actor=principal.actor,
                                        sha256=body.sha256)
            scan, job = dlp_service.submit_stored(session=session, sha256=body.sha256,
                                                  filename=body.name, submitted_by=principal.actor)
        audit.record(session=session, ctx=ctx, action="dlp.submit", target=f"dlp_scan:{scan.id}",
                     details={"source": scan.source, "sha256": scan.sha256, "job_id": job[0]})
        session.commit()
    except BaseException:
        session.rollback()
        if upload is not None:
            upload.discard()
        raise
    enqueue_or_fail([job])
    return dlp_read(session, scan)


@router.post("/scans", status_code=202, response_model=DlpScanRead, openapi_extra=DLP_BODY,
             summary="Classify text or a stored file (JSON), or an uploaded file (multipart)")
async def submit(
    request: Request,
    principal: Principal = Depends(require("dlp:submit")),
    session: Session = Depends(db_session),
) -> DlpScanRead:
    settings = get_settings()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body: DlpScanCreate | None = None
    upload: MultipartUpload | None = None
    if content_type == "application/json":
        body = await _json_body(request, settings.dlp_max_text_chars * 4 + 65536)
    elif content_type == "multipart/form-data":
        boundary = boundary_of(request)
        if principal.may_submit(dlp_service.DLP_KIND):
            store = await run_in_threadpool(get_store, settings)
            upload = MultipartUpload(boundary, store=store,
                                     max_file_bytes=settings.scan_max_upload_bytes, max_files=1)
            await receive_upload(request, upload)
    else:
        raise InvalidInput("send JSON (text or sha256) or a multipart/form-data file")
    if not principal.may_submit(dlp_service.DLP_KIND):
        raise PermissionDenied("this key may not submit that job kind")
    return await run_in_threadpool(_submit, session, principal,
                                   audit_context(request, principal.actor), body, upload)


@router.get("/scans/{dlp_scan_id}", response_model=DlpScanRead,
            summary="A DLP scan: classification and findings (never the values)")
def get_scan(
    dlp_scan_id: Annotated[str, Path(max_length=36)],
    principal: Principal = Depends(require("dlp:read")),
    session: Session = Depends(db_read_session),
) -> DlpScanRead:
    scan = dlp_service.get_scan(session=session, dlp_scan_id=dlp_scan_id)
    return dlp_read(session, visible(scan, principal, "DLP scan"))


@router.post("/redact", response_model=RedactRead,
             summary="Redact text: every finding replaced by [TYPE] or a mask")
def redact(
    body: RedactCreate,
    principal: Principal = Depends(require("dlp:submit")),
) -> RedactRead:
    text, document = dlp_service.redact_text(body.text, style=body.style, settings=get_settings())
    return RedactRead(text=text, classification=document.classification,
                      findings=[RedactedFinding(type=f.type, category=f.category, start=f.start,
                                                end=f.end) for f in document.findings])
