"""/v1/certs/ca: the internal CA — issue from a CSR, revoke, the revocation list and chain,
managed (deployed) certificates and their renewal."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from secops.api.cert_schemas import (
    DeploymentCreate,
    DeploymentRead,
    DeploymentUpdate,
    IssueCreate,
    IssuedRead,
    IssueRead,
    RenewCreate,
    RevokeCreate,
)
from secops.api.deps import Principal, db_read_session, db_session, public, require
from secops.api.schemas import JobRead
from secops.api.security import audit_context
from secops.config import get_settings
from secops.services import audit, cert_ca, cert_deploy
from secops.services.jobs import create_job
from tasks.dispatch import enqueue_or_fail

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
    return Response(cert_ca.chain_pem(get_settings()),
                    media_type="application/pem-certificate-chain",
                    headers={"Cache-Control": "public, max-age=300"})


@router.post("/deployments", status_code=201, response_model=DeploymentRead,
             summary="Keep a certificate issued and deployed (files, reload hook, endpoint check)")
def create_deployment(body: DeploymentCreate, request: Request,
                      principal: Principal = Depends(require("certs:issue")),
                      session: Session = Depends(db_session)) -> DeploymentRead:
    row = cert_deploy.create_deployment(session=session, settings=get_settings(),
                                        created_by=principal.actor, **body.model_dump())
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="certs.deployment.create", target=f"deployment:{row.id}",
                 details=body.model_dump())
    session.commit()
    return DeploymentRead.model_validate(row)


@router.get("/deployments", response_model=list[DeploymentRead], summary="Managed certificates")
def list_deployments(principal: Principal = Depends(require("certs:read")),
                     session: Session = Depends(db_read_session)) -> list[DeploymentRead]:
    return [DeploymentRead.model_validate(r) for r in cert_deploy.list_deployments(session=session)]


@router.get("/deployments/{deployment_id}", response_model=DeploymentRead, summary="A managed certificate")
def get_deployment(deployment_id: Annotated[str, Path(max_length=36)],
                   principal: Principal = Depends(require("certs:read")),
                   session: Session = Depends(db_read_session)) -> DeploymentRead:
    return DeploymentRead.model_validate(cert_deploy.get_deployment(session=session,
                                                                    deployment_id=deployment_id))


@router.patch("/deployments/{deployment_id}", response_model=DeploymentRead,
              summary="Change a managed certificate's paths, reload hook, DNS-01 provider or enabled")
def update_deployment(deployment_id: Annotated[str, Path(max_length=36)], body: DeploymentUpdate,
                      request: Request, principal: Principal = Depends(require("certs:issue")),
                      session: Session = Depends(db_session)) -> DeploymentRead:
    row, changed = cert_deploy.update_deployment(
        session=session, settings=get_settings(), deployment_id=deployment_id,
        changes=body.model_dump(exclude_unset=True))
    if changed:
        audit.record(session=session, ctx=audit_context(request, principal.actor),
                     action="certs.deployment.update", target=f"deployment:{row.id}",
                     details={"name": row.name, "changes": changed})
    session.commit()
    return DeploymentRead.model_validate(row)


@router.delete("/deployments/{deployment_id}", status_code=204, response_class=Response,
               summary="Stop managing a certificate (its files stay)")
def delete_deployment(deployment_id: Annotated[str, Path(max_length=36)], request: Request,
                      principal: Principal = Depends(require("certs:issue")),
                      session: Session = Depends(db_session)) -> Response:
    row = cert_deploy.delete_deployment(session=session, deployment_id=deployment_id)
    audit.record(session=session, ctx=audit_context(request, principal.actor),
                 action="certs.deployment.delete", target=f"deployment:{row.id}", details={"name": row.name})
    session.commit()
    return Response(status_code=204)


@router.post("/renewals", status_code=202, response_model=JobRead,
             summary="Renew and deploy due managed certificates now (a certs.renew job)")
def renew(body: RenewCreate, request: Request, principal: Principal = Depends(require("certs:issue")),
          session: Session = Depends(db_session)) -> JobRead:
    job = create_job(session=session, kind="certs.renew", params=body.model_dump(exclude_none=True),
                     submitted_by=principal.actor)
    session.flush()
    audit.record(session=session, ctx=audit_context(request, principal.actor), action="certs.renew",
                 target=f"job:{job.id}", details=body.model_dump(exclude_none=True))
    session.commit()
    enqueue_or_fail([(job.id, job.kind)])
    return JobRead.model_validate(job)
