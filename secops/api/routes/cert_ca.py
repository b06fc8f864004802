"""/v1/certs/ca: the internal CA — issue from a CSR, revoke, the revocation list and chain."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from secops.api.cert_schemas import IssueCreate, IssuedRead, IssueRead, RevokeCreate
from secops.api.deps import Principal, db_read_session, db_session, public, require
from secops.api.security import audit_context
from secops.config import get_settings
from secops.services import audit, cert_ca

router = APIRouter(prefix="/v1/certs/ca", tags=["certs"])
Serial = Annotated[str, Path(max_length=64, pattern="^[0-9a-fA-F]{1,64}$")]


@router.post("/certificates", status_code=201, response_model=IssueRead,
             summary="Issue a short-lived server or client certificate from a CSR")
def issue(body: IssueCreate, request: Request, principal: Principal = Depends(require("certs:issue")),
          session: Session = Depends(db_session)) -> IssueRead:
    issued = cert_ca.issue_from_csr(session=session, settings=get_settings(), csr_pem=body.csr,
                                    profile=body.profile, lifetime=timedelta(hours=body.lifetime_hours),
                                    sans=body.sans, common_name=body.common_name,
                                    requested_by=principal.actor)
    audit.record(session=session, ctx=audit_context(request, principal.actor), action="certs.ca.issue",
                 target=f"certificate:{issued.record.serial}",
                 details={"common_name": issued.record.common_name, "profile": body.profile,
                          "sans": issued.record.sans, "not_after": issued.record.not_after})
    session.commit()
    out = IssueRead.model_validate(issued.record)
    out.certificate, out.chain = issued.certificate_pem, issued.chain_pem
    return out


@router.get("/certificates", response_model=list[IssuedRead], summary="Certificates the CA issued")
def list_issued(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                principal: Principal = Depends(require("certs:read")),
                session: Session = Depends(db_read_session)) -> list[IssuedRead]:
    return [IssuedRead.model_validate(r) for r in cert_ca.list_issued(session=session, limit=limit,
                                                                      offset=offset)]


@router.post("/certificates/{serial}/revoke", response_model=IssuedRead,
             summary="Revoke an issued certificate (it is on the next revocation list)")
def revoke(serial: Serial, body: RevokeCreate, request: Request,
           principal: Principal = Depends(require("certs:issue")),
           session: Session = Depends(db_session)) -> IssuedRead:
    record = cert_ca.revoke(session=session, serial=serial, reason=body.reason, actor=principal.actor)
    audit.record(session=session, ctx=audit_context(request, principal.actor), action="certs.ca.revoke",
                 target=f"certificate:{record.serial}", details={"reason": body.reason})
    session.commit()
    return IssuedRead.model_validate(record)


@router.get("/crl", response_class=Response, summary="The revocation list (DER), open to relying parties",
            responses={200: {"content": {"application/pkix-crl": {}}}})
def crl(_: None = Depends(public()), session: Session = Depends(db_read_session)) -> Response:
    return Response(cert_ca.crl_der(session=session, settings=get_settings()),
                    media_type="application/pkix-crl",
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/chain", response_class=Response, summary="The CA chain (PEM), open to relying parties",
            responses={200: {"content": {"application/pem-certificate-chain": {}}}})
def chain(_: None = Depends(public())) -> Response:
    return Response(cert_ca.load_issuer(get_settings()).chain_pem,
                    media_type="application/pem-certificate-chain")
