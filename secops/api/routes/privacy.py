"""/v1/privacy: data subject requests, identity verification, deadlines, bundles.

The subject's identities and contact address are accepted here and never returned,
logged or put into a job's params (the jobs get the request id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_read_session, db_session, require, visible
from secops.api.schemas import Strict
from secops.api.security import audit_context, report_event
from secops.config import get_settings
from secops.db.models import PrivacyBreach, PrivacyRequest
from secops.errors import InvalidInput
from secops.services import breaches, consents, privacy_jobs
from secops.services import privacy as service
from secops.services.storage import get_store
from tasks.dispatch import enqueue_or_fail

router = APIRouter(prefix="/v1/privacy", tags=["privacy"])
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


class PrivacyRequestCreate(Strict):
    type: Literal["access", "portability", "rectification", "erasure", "restriction", "objection"]
    identities: dict[Name, Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        ..., min_length=1, max_length=10
    )
    contact_email: str = Field(..., min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    rectification: dict[Annotated[str, Field(max_length=200)], str | int | float | None] | None = Field(
        None, max_length=50
    )


class CodeCheck(Strict):
    code: str = Field(..., min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


class Extension(Strict):
    reason: str = Field(..., min_length=1, max_length=2000)


class Closing(Strict):
    outcome: Literal["completed", "rejected"]
    note: str = Field(..., min_length=1, max_length=500)


class PrivacyRequestRead(BaseModel):
    id: str
    type: str
    status: str
    identity_types: list[str]
    submitted_by: str
    received_at: datetime
    due_at: datetime
    extended_at: datetime | None
    extension_reason: str | None
    verified_at: datetime | None
    completed_at: datetime | None
    job_id: str | None
    result: dict[str, Any] | None
    bundle_ready: bool
    download_expires_at: datetime | None
    downloaded_at: datetime | None
    history: list[dict[str, Any]]
    download_token: str | None = None  # only in the answer to a successful verification


def read(req: PrivacyRequest, token: str | None = None) -> PrivacyRequestRead:
    return PrivacyRequestRead(
        id=req.id,
        type=req.type,
        status=req.status,
        identity_types=req.identity_types,
        submitted_by=req.submitted_by,
        received_at=req.received_at,
        due_at=req.due_at,
        extended_at=req.extended_at,
        extension_reason=req.extension_reason,
        verified_at=req.verified_at,
        completed_at=req.completed_at,
        job_id=req.job_id,
        result=req.result,
        bundle_ready=req.bundle_sha256 is not None and req.downloaded_at is None,
        download_expires_at=req.download_expires_at,
        downloaded_at=req.downloaded_at,
        history=req.history,
        download_token=token,
    )


def _visible(session: Session, principal: Principal, request_id: str) -> PrivacyRequest:
    return visible(service.get_request(session=session, request_id=request_id), principal,
                   "privacy request")


RequestId = Annotated[str, Path(max_length=36)]


@router.post(
    "/requests",
    status_code=201,
    response_model=PrivacyRequestRead,
    summary="Receive a data subject request and mail the subject a one-time code",
)
def create(
    body: PrivacyRequestCreate,
    request: Request,
    principal: Principal = Depends(require("privacy:submit")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = service.create_request(
        session=session,
        settings=get_settings(),
        ctx=audit_context(request, principal.actor),
        type=body.type,
        identities=dict(body.identities),
        contact=body.contact_email,
        rectification=body.rectification,
    )
    session.commit()
    return read(req)


@router.post(
    "/requests/{request_id}/code",
    response_model=PrivacyRequestRead,
    summary="Mail a new one-time code (the previous one is void); rate limited",
)
def resend(
    request_id: RequestId,
    request: Request,
    principal: Principal = Depends(require("privacy:submit")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = _visible(session, principal, request_id)
    service.send_code(
        session=session, settings=get_settings(), req=req, ctx=audit_context(request, principal.actor)
    )
    session.commit()
    return read(req)


@router.post(
    "/requests/{request_id}/verify",
    status_code=202,
    response_model=PrivacyRequestRead,
    summary="Check the subject's one-time code and start the request's work",
)
def verify(
    request_id: RequestId,
    body: CodeCheck,
    request: Request,
    principal: Principal = Depends(require("privacy:submit")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = _visible(session, principal, request_id)
    try:
        done = service.verify_code(
            session=session,
            settings=get_settings(),
            req=req,
            code=body.code,
            ctx=audit_context(request, principal.actor),
        )
    except InvalidInput:
        attempts = req.code_attempts
        session.commit()  # the failed attempt counts
        report_event(
            service.CODE_FAILED,
            {"request_id": request_id, "submitted_by": principal.actor, "attempts": attempts},
        )
        raise
    session.commit()
    if done.job is not None:
        enqueue_or_fail([done.job])
    return read(req, done.download_token)


@router.get("/requests", response_model=list[PrivacyRequestRead], summary="Requests, newest first")
def list_(
    status: Annotated[str | None, Query(max_length=24)] = None,
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_read_session),
) -> list[PrivacyRequestRead]:
    return [
        read(r)
        for r in service.list_requests(session=session, status=status)
        if principal.can_see(r.submitted_by)
    ]


@router.get("/requests/{request_id}", response_model=PrivacyRequestRead, summary="A request")
def get(
    request_id: RequestId,
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_read_session),
) -> PrivacyRequestRead:
    return read(_visible(session, principal, request_id))


@router.post(
    "/requests/{request_id}/extend",
    response_model=PrivacyRequestRead,
    summary="Extend the due date by two months, once, with a reason (Art 12(3))",
)
def extend(
    request_id: RequestId,
    body: Extension,
    request: Request,
    principal: Principal = Depends(require("privacy:manage")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = service.extend(
        session=session,
        req=_visible(session, principal, request_id),
        reason=body.reason,
        ctx=audit_context(request, principal.actor),
    )
    session.commit()
    return read(req)


@router.post(
    "/requests/{request_id}/close",
    response_model=PrivacyRequestRead,
    summary="Close a restriction/objection, an erasure under review, or refuse a request",
)
def close(
    request_id: RequestId,
    body: Closing,
    request: Request,
    principal: Principal = Depends(require("privacy:manage")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = service.close(
        session=session,
        req=_visible(session, principal, request_id),
        outcome=body.outcome,
        note=body.note,
        ctx=audit_context(request, principal.actor),
    )
    session.commit()
    return read(req)


@router.post(
    "/requests/{request_id}/retry",
    status_code=202,
    response_model=PrivacyRequestRead,
    summary="Run a failed request again (its failed stores; an export's every store)",
)
def retry(
    request_id: RequestId,
    request: Request,
    principal: Principal = Depends(require("privacy:manage")),
    session: Session = Depends(db_session),
) -> PrivacyRequestRead:
    req = _visible(session, principal, request_id)
    jobs = privacy_jobs.retry(
        session=session, settings=get_settings(), req=req, ctx=audit_context(request, principal.actor)
    )
    session.commit()
    report_event("privacy.request_retried", {"request_id": req.id, "by": principal.actor,
                                             "jobs": len(jobs)}, "low")
    enqueue_or_fail(jobs)
    return read(req)


@router.get(
    "/requests/{request_id}/bundle",
    summary="Download the export bundle, once, before it expires",
    responses={200: {"content": {"application/zip": {}}}},
)
def bundle(
    request_id: RequestId,
    token: Annotated[str, Header(alias="X-Download-Token", min_length=20, max_length=100)],
    request: Request,
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_session),
) -> Response:
    settings = get_settings()
    store = get_store(settings)
    req = _visible(session, principal, request_id)
    data = privacy_jobs.download(
        session=session,
        store=store,
        settings=settings,
        req=req,
        token=token,
        ctx=audit_context(request, principal.actor),
    )
    sha256 = req.bundle_sha256
    session.commit()
    if sha256 is not None:
        privacy_jobs.drop_bundle(store, sha256)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="privacy-{req.id}.zip"'},
    )


# -- consent ledger --------------------------------------------------------------------------


class ConsentCreate(Strict):
    identities: dict[Name, Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        ..., min_length=1, max_length=10
    )
    purpose: str = Field(..., min_length=1, max_length=200)
    action: Literal["given", "withdrawn"]
    source: str = Field(..., min_length=1, max_length=200)
    lawful_basis: Literal["consent", "legitimate_interests"] = "consent"


class ConsentQuery(Strict):
    identities: dict[Name, Annotated[str, Field(min_length=1, max_length=320)]] = Field(
        ..., min_length=1, max_length=10
    )


@router.post("/consents", status_code=201, summary="Append a consent given or withdrawn to the ledger")
def consent_record(
    body: ConsentCreate,
    request: Request,
    principal: Principal = Depends(require("privacy:submit")),
    session: Session = Depends(db_session),
) -> dict[str, Any]:
    entry = consents.record(
        session=session,
        settings=get_settings(),
        ctx=audit_context(request, principal.actor),
        identities=dict(body.identities),
        purpose=body.purpose,
        action=body.action,
        source=body.source,
        lawful_basis=body.lawful_basis,
    )
    session.commit()
    return consents.entry_dict(entry)


@router.post("/consents/state", summary="A subject's current consent per purpose, and its history")
def consent_state(
    body: ConsentQuery,
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_read_session),
) -> dict[str, Any]:
    return consents.state(session=session, settings=get_settings(), identities=dict(body.identities))


# -- breach register ---------------------------------------------------------------------------


class BreachCreate(Strict):
    title: str = Field(..., min_length=1, max_length=200)
    aware_at: datetime
    nature: str = Field(..., min_length=1, max_length=10000)
    categories: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        ..., min_length=1, max_length=50
    )
    subjects_approx: int = Field(..., ge=0)
    records_approx: int = Field(..., ge=0)
    consequences: str = Field(..., min_length=1, max_length=10000)
    measures: str = Field(..., min_length=1, max_length=10000)
    dpo_contact: str = Field(..., min_length=1, max_length=320)
    high_risk: bool = False


class BreachNotified(Strict):
    who: Literal["authority", "subjects"]
    at: datetime | None = None
    delay_reason: str | None = Field(None, max_length=5000)


def breach_read(b: PrivacyBreach) -> dict[str, Any]:
    return {
        "id": b.id,
        "title": b.title,
        "status": b.status,
        "aware_at": b.aware_at.isoformat(),
        "notification_deadline": breaches.deadline(b).isoformat(),
        "nature": b.nature,
        "categories": b.categories,
        "subjects_approx": b.subjects_approx,
        "records_approx": b.records_approx,
        "consequences": b.consequences,
        "measures": b.measures,
        "dpo_contact": b.dpo_contact,
        "high_risk": b.high_risk,
        "authority_notified_at": b.authority_notified_at.isoformat() if b.authority_notified_at else None,
        "subjects_notified_at": b.subjects_notified_at.isoformat() if b.subjects_notified_at else None,
        "delay_reason": b.delay_reason,
        "alerts_raised": b.alerts_raised,
        "created_by": b.created_by,
    }


@router.post("/breaches", status_code=201, summary="Record a personal-data breach (starts the 72-hour clock)")
def breach_create(
    body: BreachCreate,
    request: Request,
    principal: Principal = Depends(require("privacy:manage")),
    session: Session = Depends(db_session),
) -> dict[str, Any]:
    breach = breaches.create(
        session=session, ctx=audit_context(request, principal.actor), data=body.model_dump()
    )
    session.commit()
    return breach_read(breach)


@router.get("/breaches", summary="The breach register, newest first")
def breach_list(
    principal: Principal = Depends(require("privacy:read")), session: Session = Depends(db_read_session)
) -> list[dict[str, Any]]:
    return [breach_read(b) for b in breaches.list_breaches(session=session)]


@router.get("/breaches/{breach_id}", summary="A breach and its notification deadline")
def breach_get(
    breach_id: RequestId,
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_read_session),
) -> dict[str, Any]:
    return breach_read(breaches.get(session=session, breach_id=breach_id))


@router.post(
    "/breaches/{breach_id}/notified", summary="Record the notification of the authority or the subjects"
)
def breach_notified(
    breach_id: RequestId,
    body: BreachNotified,
    request: Request,
    principal: Principal = Depends(require("privacy:manage")),
    session: Session = Depends(db_session),
) -> dict[str, Any]:
    breach = breaches.notified(
        session=session,
        ctx=audit_context(request, principal.actor),
        breach=breaches.get(session=session, breach_id=breach_id),
        who=body.who,
        at=body.at,
        delay_reason=body.delay_reason,
    )
    session.commit()
    return breach_read(breach)


@router.get(
    "/breaches/{breach_id}/report",
    summary="The notification report (Art 33(3)) as Markdown or JSON",
    responses={200: {"content": {"text/markdown": {}, "application/json": {}}}},
)
def breach_report(
    breach_id: RequestId,
    format: Annotated[Literal["md", "json"], Query()] = "md",
    principal: Principal = Depends(require("privacy:read")),
    session: Session = Depends(db_read_session),
) -> Response:
    text = breaches.report(breaches.get(session=session, breach_id=breach_id), format)
    return Response(
        text, media_type="application/json" if format == "json" else "text/markdown; charset=utf-8"
    )
