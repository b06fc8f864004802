"""Renewal through ACME for managed certificates (``issuer: acme``).

Due when the server's ARI window (RFC 9773, where the directory offers ``renewalInfo``)
says so, else at two thirds of the deployed certificate's lifetime. The time chosen in
the window is kept on the deployment and the server is asked again after its
``Retry-After``. A renewal makes a
new key in ``<key_path>.pending`` (mode 0600), orders, and records the order (URL and
CSR) and commits through the caller's ``checkpoint`` *before* answering challenges or
finalising; a retried or redelivered job finds the recorded order and resumes it, so
one renewal never orders twice. A ``rateLimited`` answer sets ``next_attempt_at`` from
its ``Retry-After`` and no attempt is made before then. The ACME account key is read
through the secret reader (``certs_acme_account_key``). DNS-01 goes through the
deployment's DNS provider plugin (:mod:`secops.certs.dns`), its secrets read through the
secret reader too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.certs import analysis, ari, ca, dns
from secops.certs.acme_issuer import (
    AcmeError,
    AcmeIssuer,
    AcmeRateLimited,
    Http01Responder,
    Solver,
    Webroot,
    make_csr,
)
from secops.certs.analysis import spki_sha256
from secops.certs.deploy import write_atomic
from secops.certs.model import CertsError
from secops.config import Settings, read_secret
from secops.db.base import utcnow
from secops.db.models import CertAcmeOrder, CertDeployment, CertTarget
from secops.errors import ConfigurationError, Unavailable
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


def dns_provider(row: CertDeployment, settings: Settings) -> dns.DnsProvider:
    """The deployment's DNS-01 provider (its own, its hook, or the configured default),
    with the provider's secrets read through the secret reader."""
    if row.acme_dns_provider:
        slug, provider_settings = row.acme_dns_provider, dict(row.acme_dns_settings or {})
    elif row.acme_dns_hook:
        slug, provider_settings = "hook", {"argv": list(row.acme_dns_hook)}
    elif settings.certs_acme_dns_provider:
        slug, provider_settings = settings.certs_acme_dns_provider, dict(settings.certs_acme_dns_settings)
    else:
        raise AcmeError("no DNS-01 provider: set acme_dns_provider on the deployment or "
                        "SECOPS_CERTS_ACME_DNS_PROVIDER")
    try:
        cls = dns.provider_class(slug)
        secrets: dict[str, str] = {}
        for name in cls.secrets:
            secret = dns.secret_name(slug, name)
            value = read_secret(secret)
            if value is None:
                raise AcmeError(f"the DNS provider {slug} needs the secret {secret}: "
                                f"provide {dns.secret_sources(secret)}")
            secrets[name] = value.get_secret_value()
        return dns.build(slug, provider_settings, secrets)
    except AcmeError:
        raise
    except ConfigurationError as exc:
        raise AcmeError(exc.message) from None
    except CertsError as exc:
        raise AcmeError(str(exc)) from None


def _solver(row: CertDeployment, settings: Settings) -> tuple[Solver, Http01Responder | None]:
    if row.acme_challenge == "dns-01":
        return dns.DnsSolver(dns_provider(row, settings)), None
    if row.acme_webroot:
        return Webroot(Path(row.acme_webroot)), None
    host, _, port = settings.certs_acme_http_address.rpartition(":")
    if not host or not port.isdigit():
        raise Unavailable("SECOPS_CERTS_ACME_HTTP_ADDRESS must be host:port (e.g. 0.0.0.0:80)")
    responder = Http01Responder(host.strip("[]"), int(port))
    return responder, responder


def _due(row: CertDeployment, settings: Settings, issuer: AcmeIssuer) -> bool:
    """Due at the time chosen in the server's ARI window (asked again once its Retry-After
    has passed), else at two thirds of the lifetime."""
    if row.status != "deployed" or row.not_before is None or row.not_after is None:
        return True
    now = utcnow()
    if row.ari_renew_at is not None and row.ari_next_check is not None and now < row.ari_next_check:
        return now >= row.ari_renew_at
    try:
        cert_pem = Path(row.cert_path).read_bytes()
        x509.load_pem_x509_certificate(cert_pem)
    except (OSError, ValueError):
        return True
    try:
        info = issuer.renewal_info(cert_pem, now)
    except AcmeError as exc:  # the fallback holds; the next run asks again
        row.last_error = str(exc)[:1000]
        info = None
    if info is not None:
        row.ari_renew_at = ari.choose_renewal_time(info, now)
        row.ari_next_check, row.ari_explanation_url = info.next_check, info.explanation_url
        return now >= row.ari_renew_at
    row.ari_renew_at = row.ari_next_check = row.ari_explanation_url = None
    return now >= analysis.renewal_time(row.not_before, row.not_after, settings.certs_renewal_fraction)


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
        solver, responder = _solver(row, settings)  # a missing provider or secret fails before ordering
        if order_row is None:
            order_row = _place_order(session, row, issuer, ctx)
            checkpoint()  # the order is on record before anything can fail halfway
            order = issuer.load_order(order_row.order_url, order_row.csr_pem.encode())
        else:
            order = issuer.load_order(order_row.order_url, order_row.csr_pem.encode())
            audit.record(session=session, ctx=ctx, action="certs.acme.resume", target=f"deployment:{row.id}",
                         details={"order": order_row.order_url})
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
    row.ari_renew_at = row.ari_next_check = row.ari_explanation_url = None  # a new certificate, a new certID
    return outcome


def _replaces(row: CertDeployment) -> str | None:
    """The ARI certID of the deployed certificate this order renews, if there is one."""
    if row.status != "deployed":
        return None
    try:
        return ari.cert_id(x509.load_pem_x509_certificate(Path(row.cert_path).read_bytes()))
    except (OSError, ValueError, CertsError):
        return None


def _place_order(session: Session, row: CertDeployment, issuer: AcmeIssuer,
                 ctx: AuditContext) -> CertAcmeOrder:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = f"{row.key_path}.pending"
    write_atomic(Path(key_path), ca.key_pem(key), 0o600)
    csr = make_csr(ca.key_pem(key), list(row.sans))
    order = issuer.new_order(csr, replaces=_replaces(row))
    order_row = CertAcmeOrder(deployment_id=row.id, order_url=order.uri, csr_pem=csr.decode(),
                              key_path=key_path, status="ordered", created_at=utcnow(), updated_at=utcnow())
    session.add(order_row)
    session.flush()
    audit.record(session=session, ctx=ctx, action="certs.acme.order", target=f"deployment:{row.id}",
                 details={"order": order.uri, "identifiers": list(row.sans)})
    return order_row
