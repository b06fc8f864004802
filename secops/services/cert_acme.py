"""Renewal through ACME for managed certificates (``issuer: acme``).

Due when the server's ARI window (RFC 9773, where the directory offers ``renewalInfo``)
says so, else at two thirds of the deployed certificate's lifetime. A renewal makes a
new key in ``<key_path>.pending`` (mode 0600), orders, and records the order (URL and
CSR) and commits through the caller's ``checkpoint`` *before* answering challenges or
finalising; a retried or redelivered job finds the recorded order and resumes it, so
one renewal never orders twice. A ``rateLimited`` answer sets ``next_attempt_at`` from
its ``Retry-After`` and no attempt is made before then. The ACME account key is read
through the secret reader (``certs_acme_account_key``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.certs import ca
from secops.certs.acme_issuer import (
    AcmeError,
    AcmeIssuer,
    AcmeRateLimited,
    Dns01Hook,
    Http01Responder,
    Solver,
    Webroot,
    make_csr,
)
from secops.certs.analysis import spki_sha256
from secops.certs.deploy import write_atomic
from secops.certs.model import CertsError
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import CertAcmeOrder, CertDeployment, CertTarget
from secops.errors import ConfigurationError, InvalidInput, Unavailable
from secops.services import audit, monitor
from secops.services.audit import AuditContext
from secops.services.cert_deploy import RenewOutcome, deploy_issued, refuse_unpinned

CHALLENGES = ("http-01", "dns-01")


def issuer_for(settings: Settings) -> AcmeIssuer:
    if not settings.certs_acme_directory_url:
        raise Unavailable("ACME is not configured: set SECOPS_CERTS_ACME_DIRECTORY_URL")
    try:
        key = settings.secret("certs_acme_account_key").get_secret_value()
    except ConfigurationError as exc:
        raise Unavailable(f"ACME is not configured: {exc.message}") from None
    verify: str | bool = str(settings.certs_acme_ca_bundle) if settings.certs_acme_ca_bundle else True
    try:
        return AcmeIssuer(settings.certs_acme_directory_url, key, verify=verify,
                          email=settings.certs_acme_email)
    except CertsError as exc:
        raise Unavailable(str(exc)) from None


def _solver(row: CertDeployment, settings: Settings) -> tuple[Solver, Http01Responder | None]:
    if row.acme_challenge == "dns-01":
        if not row.acme_dns_hook:
            raise InvalidInput("a dns-01 deployment needs a DNS hook")
        return Dns01Hook(list(row.acme_dns_hook)), None
    if row.acme_webroot:
        return Webroot(Path(row.acme_webroot)), None
    host, _, port = settings.certs_acme_http_address.rpartition(":")
    if not host or not port.isdigit():
        raise Unavailable("SECOPS_CERTS_ACME_HTTP_ADDRESS must be host:port (e.g. 0.0.0.0:80)")
    responder = Http01Responder(host.strip("[]"), int(port))
    return responder, responder


def _due(row: CertDeployment, settings: Settings, issuer: AcmeIssuer) -> bool:
    if row.status != "deployed" or row.not_before is None or row.not_after is None:
        return True
    try:
        cert_pem = Path(row.cert_path).read_bytes()
        x509.load_pem_x509_certificate(cert_pem)
    except (OSError, ValueError):
        return True
    suggested = issuer.renewal_time(cert_pem)
    if suggested is not None:
        return utcnow() >= suggested
    return utcnow() >= row.not_before + (row.not_after - row.not_before) * settings.certs_renewal_fraction


def renew(*, session: Session, settings: Settings, row: CertDeployment, force: bool, ctx: AuditContext,
          prober: object, checkpoint: Callable[[], None]) -> RenewOutcome:
    if row.next_attempt_at is not None and utcnow() < row.next_attempt_at:
        return RenewOutcome(row.id, "rate_limited", f"not before {row.next_attempt_at.isoformat()}")
    issuer = issuer_for(settings)
    order_row = session.scalar(select(CertAcmeOrder).where(CertAcmeOrder.deployment_id == row.id,
                                                           CertAcmeOrder.status == "ordered")
                               .order_by(CertAcmeOrder.id.desc()).limit(1))
    if order_row is None and not force and not _due(row, settings, issuer):
        return RenewOutcome(row.id, "not_due")
    try:
        if order_row is None:
            order_row = _place_order(session, row, issuer, ctx)
            checkpoint()  # the order is on record before anything can fail halfway
            order = issuer.load_order(order_row.order_url, order_row.csr_pem.encode())
        else:
            order = issuer.load_order(order_row.order_url, order_row.csr_pem.encode())
            audit.record(session=session, ctx=ctx, action="certs.acme.resume", target=f"deployment:{row.id}",
                         details={"order": order_row.order_url})
        solver, responder = _solver(row, settings)
        if responder is not None:
            with responder.running():
                fullchain = issuer.complete(order, solver)
        else:
            fullchain = issuer.complete(order, solver)
    except AcmeRateLimited as exc:
        row.next_attempt_at = exc.retry_at if exc.retry_at.tzinfo else exc.retry_at.astimezone()
        row.last_error = str(exc)[:1000]
        return RenewOutcome(row.id, "rate_limited", str(exc))
    except AcmeError as exc:
        row.status, row.last_error = "failed", str(exc)[:1000]
        if order_row is not None:
            order_row.status, order_row.error, order_row.updated_at = "failed", str(exc)[:1000], utcnow()
        monitor.log_security_event("cert.renewal_failed", {"subject": row.name, "reason": str(exc)[:500]},
                                   "high", session=session)
        return RenewOutcome(row.id, "failed", str(exc))
    certs_in_chain = x509.load_pem_x509_certificates(fullchain.encode())
    key_pem = Path(order_row.key_path).read_bytes()
    cert_pem, chain_pem = ca.pem(certs_in_chain[0]), b"".join(ca.pem(c) for c in certs_in_chain[1:])
    audit.record(session=session, ctx=ctx, action="certs.issue", target=f"deployment:{row.id}",
                 details={"issuer": "acme", "order": order_row.order_url,
                          "serial": format(certs_in_chain[0].serial_number, "x"),
                          "not_after": certs_in_chain[0].not_valid_after_utc})
    monitor.log_security_event("cert.issued", {"subject": row.name, "issuer": "acme",
                                               "order": order_row.order_url}, "low", session=session)
    order_row.status, order_row.updated_at = "done", utcnow()
    target = session.get(CertTarget, row.target_id) if row.target_id else None
    refused = refuse_unpinned(session=session, row=row, target=target,
                              chain_spki=[spki_sha256(c) for c in certs_in_chain], ctx=ctx)
    if refused is not None:
        return refused
    outcome = deploy_issued(session=session, row=row, target=target, cert_pem=cert_pem, key_pem=key_pem,
                            chain_pem=chain_pem, ctx=ctx, prober=prober,  # type: ignore[arg-type]
                            issued=None)
    Path(order_row.key_path).unlink(missing_ok=True)
    row.next_attempt_at = None
    return outcome


def _place_order(session: Session, row: CertDeployment, issuer: AcmeIssuer,
                 ctx: AuditContext) -> CertAcmeOrder:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = f"{row.key_path}.pending"
    write_atomic(Path(key_path), ca.key_pem(key), 0o600)
    csr = make_csr(ca.key_pem(key), list(row.sans))
    order = issuer.new_order(csr)
    order_row = CertAcmeOrder(deployment_id=row.id, order_url=order.uri, csr_pem=csr.decode(),
                              key_path=key_path, status="ordered", created_at=utcnow(), updated_at=utcnow())
    session.add(order_row)
    session.flush()
    audit.record(session=session, ctx=ctx, action="certs.acme.order", target=f"deployment:{row.id}",
                 details={"order": order.uri, "identifiers": list(row.sans)})
    return order_row
