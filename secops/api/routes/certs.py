"""/v1/certs: the certificate inventory (endpoints, files), certificates seen, scans."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from secops.api.cert_schemas import (
    CertificateList,
    CertificateRead,
    CertScanCreate,
    EndpointCreate,
    FileCreate,
    TargetList,
    TargetRead,
    TargetUpdate,
)
from secops.api.deps import Principal, db_read_session, db_session, require
from secops.api.schemas import JobRead
from secops.api.security import audit_context
from secops.config import get_settings
from secops.db.models import CertSeen, CertTarget
from secops.errors import PermissionDenied
from secops.services import audit
from secops.services import certs as cert_service
from secops.services.jobs import create_job
from tasks.dispatch import enqueue_or_fail

router = APIRouter(prefix="/v1/certs", tags=["certs"])
TargetId = Annotated[str, Path(max_length=36)]
SCAN_KIND = "certs.scan"


def _read(session: Session, target: CertTarget, *, with_certs: bool = True,
          current: list[CertSeen] | None = None) -> TargetRead:
    """``current``: the target's current chain when already loaded with its page's."""
    out = TargetRead.model_validate(target)
    if with_certs:
        if current is None:
            current = cert_service.current_certificates(session=session, target_id=target.id)
        out.certificates = [CertificateRead.model_validate(c) for c in current]
        for cert in out.certificates:
            cert.target = target.key
    return out


def _audit(request: Request, principal: Principal, session: Session, action: str,
           target: CertTarget, details: dict | None = None) -> None:
    audit.record(session=session, ctx=audit_context(request, principal.actor), action=action,
                 target=f"cert_target:{target.id}", details={"key": target.key, **(details or {})})


@router.post("/endpoints", status_code=201, response_model=TargetRead, summary="Watch a TLS endpoint")
def add_endpoint(body: EndpointCreate, request: Request,
                 principal: Principal = Depends(require("certs:write")),
                 session: Session = Depends(db_session)) -> TargetRead:
    target = cert_service.add_endpoint(session=session, host=body.host, port=body.port, sni=body.sni,
                                       owner=body.owner, tags=body.tags, pins=body.pins,
                                       created_by=principal.actor)
    _audit(request, principal, session, "certs.endpoint.add", target,
           {"owner": target.owner, "tags": target.tags, "pins": target.pins})
    session.commit()
    return _read(session, target)


@router.post("/files", status_code=201, response_model=TargetRead,
             summary="Watch a certificate file or directory (under SECOPS_CERTS_ALLOWED_DIRS)")
def add_file(body: FileCreate, request: Request,
             principal: Principal = Depends(require("certs:write")),
             session: Session = Depends(db_session)) -> TargetRead:
    target = cert_service.add_file(session=session, path=body.path, owner=body.owner, tags=body.tags,
                                   pins=body.pins, created_by=principal.actor, settings=get_settings())
    _audit(request, principal, session, "certs.file.add", target, {"owner": target.owner})
    session.commit()
    return _read(session, target)


def _list(kind: str, session: Session, tag: str | None, owner: str | None, limit: int,
          offset: int) -> TargetList:
    rows, total = cert_service.list_targets(session=session, kind=kind, tag=tag, owner=owner,
                                            limit=limit, offset=offset)
    chains = cert_service.current_certificates_of(session=session, target_ids=[r.id for r in rows])
    return TargetList(items=[_read(session, r, current=chains.get(r.id, [])) for r in rows],
                      total=total, limit=limit, offset=offset)


@router.get("/endpoints", response_model=TargetList, summary="List watched endpoints")
def list_endpoints(tag: Annotated[str | None, Query(max_length=64)] = None,
                   owner: Annotated[str | None, Query(max_length=120)] = None,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                   principal: Principal = Depends(require("certs:read")),
                   session: Session = Depends(db_read_session)) -> TargetList:
    return _list("endpoint", session, tag, owner, limit, offset)


@router.get("/files", response_model=TargetList, summary="List watched certificate files")
def list_files(tag: Annotated[str | None, Query(max_length=64)] = None,
               owner: Annotated[str | None, Query(max_length=120)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
               principal: Principal = Depends(require("certs:read")),
               session: Session = Depends(db_read_session)) -> TargetList:
    return _list("file", session, tag, owner, limit, offset)


for _kind, _plural in (("endpoint", "endpoints"), ("file", "files")):
    def _routes(kind: str = _kind, plural: str = _plural) -> None:
        @router.get(f"/{plural}/{{target_id}}", response_model=TargetRead,
                    summary=f"A watched {kind} with its current certificates and findings",
                    operation_id=f"get_cert_{kind}")
        def get_one(target_id: TargetId, principal: Principal = Depends(require("certs:read")),
                    session: Session = Depends(db_read_session)) -> TargetRead:
            return _read(session, cert_service.get_target(session=session, target_id=target_id,
                                                          kind=kind))

        @router.patch(f"/{plural}/{{target_id}}", response_model=TargetRead,
                      summary=f"Change a watched {kind}'s owner, tags, pins or state",
                      operation_id=f"update_cert_{kind}")
        def update(target_id: TargetId, body: TargetUpdate, request: Request,
                   principal: Principal = Depends(require("certs:write")),
                   session: Session = Depends(db_session)) -> TargetRead:
            changes = body.model_dump(exclude_unset=True)
            target = cert_service.update_target(session=session, target_id=target_id, kind=kind,
                                                changes=changes)
            _audit(request, principal, session, f"certs.{kind}.update", target, changes)
            session.commit()
            return _read(session, target)

        @router.delete(f"/{plural}/{{target_id}}", status_code=204, response_class=Response,
                       summary=f"Stop watching a {kind} (its history is removed)",
                       operation_id=f"delete_cert_{kind}")
        def delete(target_id: TargetId, request: Request,
                   principal: Principal = Depends(require("certs:write")),
                   session: Session = Depends(db_session)) -> Response:
            target = cert_service.delete_target(session=session, target_id=target_id, kind=kind)
            _audit(request, principal, session, f"certs.{kind}.delete", target)
            session.commit()
            return Response(status_code=204)

        @router.get(f"/{plural}/{{target_id}}/history", response_model=list[CertificateRead],
                    summary=f"Every certificate a {kind} has served, newest first",
                    operation_id=f"history_cert_{kind}")
        def history(target_id: TargetId, principal: Principal = Depends(require("certs:read")),
                    session: Session = Depends(db_read_session)) -> list[CertificateRead]:
            target = cert_service.get_target(session=session, target_id=target_id, kind=kind)
            rows = [CertificateRead.model_validate(c)
                    for c in cert_service.history(session=session, target_id=target.id)]
            for row in rows:
                row.target = target.key
            return rows

    _routes()


@router.get("/certificates", response_model=CertificateList,
            summary="Certificates seen, soonest expiry first")
def certificates(current: bool = True,
                 expiring_within_days: Annotated[float | None, Query(ge=0, le=36500)] = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                 principal: Principal = Depends(require("certs:read")),
                 session: Session = Depends(db_read_session)) -> CertificateList:
    rows, total = cert_service.list_certificates(session=session, current_only=current,
                                                 expiring_within=expiring_within_days,
                                                 limit=limit, offset=offset)
    items = []
    for seen, key in rows:
        item = CertificateRead.model_validate(seen)
        item.target = key
        items.append(item)
    return CertificateList(items=items, total=total, limit=limit, offset=offset)


@router.post("/scans", status_code=202, response_model=JobRead,
             summary="Check the inventory now (all enabled targets, some ids, or a tag)")
def scan(body: CertScanCreate, request: Request,
         principal: Principal = Depends(require("certs:write")),
         session: Session = Depends(db_session)) -> JobRead:
    if not principal.may_submit(SCAN_KIND):
        raise PermissionDenied("this key may not submit that job kind")
    job = create_job(session=session, kind=SCAN_KIND, params=body.model_dump(exclude_none=True),
                     submitted_by=principal.actor)
    session.flush()
    audit.record(session=session, ctx=audit_context(request, principal.actor), action="certs.scan",
                 target=f"job:{job.id}", details=body.model_dump(exclude_none=True))
    session.commit()
    enqueue_or_fail([(job.id, job.kind)])
    return JobRead.model_validate(job)
