"""Managed certificates: issue from the internal CA and deploy, renewing at two thirds.

A deployment names where a certificate's files go, the reload hook and, optionally, the
inventoried endpoint that must serve it afterwards (its pins are honoured: a new key
that matches none of them is refused). ``certs.renew`` issues a certificate for every
deployment that has none yet or has passed two thirds of its lifetime, and deploys it
with :class:`secops.certs.deploy.Deployer`; a rollback revokes the unused certificate.
Files must lie under ``SECOPS_CERTS_ALLOWED_DIRS`` and the hook's program must be listed
in ``SECOPS_CERTS_RELOAD_COMMANDS``: an API key never makes a worker write elsewhere or
run anything else. Issuance, deployment and rollback are audited and are security events.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.certs import analysis, ca, dns
from secops.certs.analysis import spki_sha256
from secops.certs.deploy import Deployer, DeploySpec
from secops.certs.model import CertsError
from secops.certs.tls import Endpoint, TlsProber
from secops.config import Settings
from secops.db.base import utcnow
from secops.db.models import CertDeployment, CertIssued, CertTarget, Schedule
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import allowed_directory
from secops.services import audit, cert_ca, certs, monitor, schedules
from secops.services.audit import AuditContext


def _allowed_path(path: str | None, settings: Settings) -> str | None:
    if path is None:
        return None
    return os.path.join(_allowed_dir(str(Path(path).parent), settings, shown=path), Path(path).name)


def _allowed_dir(path: str, settings: Settings, *, shown: str | None = None) -> str:
    """``path`` resolved if under ``SECOPS_CERTS_ALLOWED_DIRS``; errors name ``shown`` (else ``path``)."""
    try:
        return str(allowed_directory(path, settings.certs_allowed_dirs, setting="SECOPS_CERTS_ALLOWED_DIRS"))
    except ValueError as exc:
        raise InvalidInput(f"{path if shown is None else shown}: {exc}") from None


def _allowed_hook(argv: list[str], settings: Settings) -> list[str]:
    if not argv:
        return []
    allowed = {os.path.realpath(p) for p in settings.certs_reload_commands}
    if not os.path.isabs(argv[0]) or os.path.realpath(argv[0]) not in allowed:
        raise InvalidInput("the reload hook's program must be an absolute path listed in "
                           "SECOPS_CERTS_RELOAD_COMMANDS")
    return argv


def create_deployment(*, session: Session, settings: Settings, name: str, common_name: str,
                      sans: list[str], target_id: str | None, cert_path: str, key_path: str,
                      chain_path: str | None, reload_argv: list[str], lifetime_hours: float,
                      reuse_key: bool, created_by: str, issuer: str = "internal",
                      acme_challenge: str | None = None, acme_webroot: str | None = None,
                      acme_dns_hook: list[str] | None = None, acme_dns_provider: str | None = None,
                      acme_dns_settings: dict[str, Any] | None = None,
                      enabled: bool = True) -> CertDeployment:
    if issuer not in ("internal", "acme"):
        raise InvalidInput("issuer must be internal or acme")
    if issuer == "acme" and acme_challenge not in ("http-01", "dns-01"):
        raise InvalidInput("an ACME deployment needs acme_challenge http-01 or dns-01")
    dns_provider, dns_settings, dns_hook = _dns_choice(
        acme_challenge if issuer == "acme" else None, acme_dns_provider, acme_dns_settings,
        list(acme_dns_hook or []), settings)
    if target_id is not None:
        certs.get_target(session=session, target_id=target_id, kind="endpoint")
    if not sans:
        raise InvalidInput("a deployed server certificate needs at least one DNS name or IP address")
    deployment = CertDeployment(
        name=name, issuer=issuer, acme_challenge=acme_challenge if issuer == "acme" else None,
        acme_webroot=_allowed_dir(acme_webroot, settings) if acme_webroot else None,
        acme_dns_hook=dns_hook, acme_dns_provider=dns_provider, acme_dns_settings=dns_settings,
        enabled=enabled, common_name=common_name,
        sans=sans, target_id=target_id,
        cert_path=_allowed_path(cert_path, settings), key_path=_allowed_path(key_path, settings),
        chain_path=_allowed_path(chain_path, settings), reload_argv=_allowed_hook(reload_argv, settings),
        lifetime_hours=lifetime_hours, reuse_key=reuse_key, status="pending", created_by=created_by,
        created_at=utcnow())
    try:
        with session.begin_nested():
            session.add(deployment)
            session.flush()
    except IntegrityError:
        raise Conflict(f"a deployment named {name!r} exists") from None
    return deployment


def _dns_choice(challenge: str | None, provider: str | None, provider_settings: dict[str, Any] | None,
                hook: list[str], settings: Settings) -> tuple[str | None, dict[str, Any] | None, list[str]]:
    """The DNS-01 provider, its checked settings and the legacy hook argv of a deployment."""
    if challenge != "dns-01":
        if provider or provider_settings or hook:
            raise InvalidInput("acme_dns_provider, acme_dns_settings and acme_dns_hook need "
                               "acme_challenge dns-01")
        return None, None, []
    if provider and hook:
        raise InvalidInput("give acme_dns_provider or acme_dns_hook, not both")
    if hook:
        return None, None, _allowed_hook(hook, settings)
    if provider is None:
        if provider_settings:
            raise InvalidInput("acme_dns_settings needs acme_dns_provider")
        if not settings.certs_acme_dns_provider:
            raise InvalidInput("a dns-01 deployment needs acme_dns_provider (a secops.dns_providers "
                               "plugin, or 'hook'), acme_dns_hook, or SECOPS_CERTS_ACME_DNS_PROVIDER")
        return None, None, []
    try:
        checked = dns.provider_class(provider).validate(provider_settings or {})
    except CertsError as exc:
        raise InvalidInput(str(exc)) from None
    if provider == "hook":
        checked["argv"] = _allowed_hook(list(checked["argv"]), settings)
    return provider, checked, []


UPDATABLE = ("cert_path", "key_path", "chain_path", "reload_argv", "enabled", "target_id", "lifetime_hours",
             "acme_webroot", "acme_dns_provider", "acme_dns_settings", "acme_dns_hook")


# fields a change may leave out but not set to null
NOT_NULL = ("cert_path", "key_path", "reload_argv", "enabled", "lifetime_hours")


def update_deployment(*, session: Session, settings: Settings, deployment_id: str,
                      changes: dict[str, Any]) -> tuple[CertDeployment, dict[str, Any]]:
    """Change where a managed certificate goes, its reload hook, DNS-01 provider or whether
    it is renewed; returns the row and ``{field: [before, after]}`` of what changed.

    Every value is checked before anything is written. A changed file path marks the
    deployment pending, so the next ``certs.renew`` deploys to the new place; any change
    raises a ``cert.deployment_changed`` event."""
    if not changes:
        raise InvalidInput("nothing to change")
    for field in NOT_NULL:
        if field in changes and changes[field] is None:
            raise InvalidInput(f"{field} cannot be null")
    row = get_deployment(session=session, deployment_id=deployment_id)
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidInput(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
    new: dict[str, Any] = {}
    for field in ("cert_path", "key_path"):
        if field in changes:
            if not changes[field]:
                raise InvalidInput(f"{field} cannot be empty")
            new[field] = _allowed_path(changes[field], settings)
    if "chain_path" in changes:
        new["chain_path"] = _allowed_path(changes["chain_path"], settings)
    if "reload_argv" in changes:
        new["reload_argv"] = _allowed_hook(list(changes["reload_argv"] or []), settings)
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled must be true or false")
        new["enabled"] = changes["enabled"]
    if "target_id" in changes:
        if changes["target_id"] is not None:
            certs.get_target(session=session, target_id=changes["target_id"], kind="endpoint")
        new["target_id"] = changes["target_id"]
    if "lifetime_hours" in changes:
        new["lifetime_hours"] = float(changes["lifetime_hours"])
    if "acme_webroot" in changes:
        if row.issuer != "acme" or row.acme_challenge != "http-01":
            raise InvalidInput("acme_webroot needs an ACME http-01 deployment")
        webroot = changes["acme_webroot"]
        new["acme_webroot"] = _allowed_dir(webroot, settings) if webroot else None
    if {"acme_dns_provider", "acme_dns_settings", "acme_dns_hook"} & set(changes):
        if row.issuer != "acme" or row.acme_challenge != "dns-01":
            raise InvalidInput("the DNS-01 provider needs an ACME dns-01 deployment")
        provider = changes.get("acme_dns_provider", row.acme_dns_provider)
        hook = changes.get("acme_dns_hook", row.acme_dns_hook) or []
        if "acme_dns_provider" in changes and "acme_dns_hook" not in changes and provider:
            hook = []
        if "acme_dns_hook" in changes and "acme_dns_provider" not in changes and hook:
            provider = None
        provider_settings = changes.get("acme_dns_settings",
                                        row.acme_dns_settings if provider == row.acme_dns_provider else None)
        (new["acme_dns_provider"], new["acme_dns_settings"],
         new["acme_dns_hook"]) = _dns_choice("dns-01", provider, provider_settings, list(hook), settings)
    changed = {field: [getattr(row, field), value] for field, value in new.items()
               if getattr(row, field) != value}
    for field, (_, value) in changed.items():
        setattr(row, field, value)
    if {"cert_path", "key_path", "chain_path"} & set(changed) and row.status == "deployed":
        row.status = "pending"
    if changed:
        monitor.log_security_event("cert.deployment_changed",
                                   {"subject": row.name, "fields": sorted(changed)}, "medium",
                                   session=session)
    session.flush()
    return row, changed


def get_deployment(*, session: Session, deployment_id: str) -> CertDeployment:
    row = session.get(CertDeployment, deployment_id)
    if row is None:
        raise NotFound("deployment not found")
    return row


def list_deployments(*, session: Session) -> list[CertDeployment]:
    return list(session.scalars(select(CertDeployment).order_by(CertDeployment.name)).all())


def delete_deployment(*, session: Session, deployment_id: str) -> CertDeployment:
    row = get_deployment(session=session, deployment_id=deployment_id)
    session.delete(row)
    session.flush()
    return row


def renewal_due(row: CertDeployment, fraction: float) -> bool:
    if row.not_before is None or row.not_after is None or row.status != "deployed":
        return True
    return utcnow() >= analysis.renewal_time(row.not_before, row.not_after, fraction)


@dataclass
class RenewOutcome:
    deployment_id: str
    status: str  # deployed | rolled_back | refused | not_due | disabled | failed | rate_limited
    detail: str | None = None


def renew(*, session: Session, settings: Settings, deployment_id: str, force: bool, actor: str,
          prober: TlsProber | None = None, checkpoint: Callable[[], None] = lambda: None) -> RenewOutcome:
    """Issue and deploy one deployment's certificate if it is due (or ``force``).

    ``checkpoint`` commits the caller's transaction: an ACME order is recorded with it
    before it is answered and finalised."""
    row = get_deployment(session=session, deployment_id=deployment_id)
    if not row.enabled:
        return RenewOutcome(row.id, "disabled")
    ctx = AuditContext(actor=actor)
    if row.issuer == "acme":
        from secops.services import cert_acme

        return cert_acme.renew(session=session, settings=settings, row=row, force=force, ctx=ctx,
                               prober=prober, checkpoint=checkpoint)
    if not force and not renewal_due(row, settings.certs_renewal_fraction):
        return RenewOutcome(row.id, "not_due")
    key = _key_for(row)
    issuer = cert_ca.load_issuer(settings)
    chain_spki = [spki_sha256(c) for c in issuer.chain]
    public_pin = analysis.key_pin(key.public_key())
    target = session.get(CertTarget, row.target_id) if row.target_id else None
    refused = refuse_unpinned(session=session, row=row, target=target, chain_spki=[public_pin, *chain_spki],
                              ctx=ctx)
    if refused is not None:
        return refused
    try:
        cert = ca.issue(issuer.chain[0], issuer.key, key.public_key(), common_name=row.common_name,
                        sans=list(row.sans), profile="server", now=utcnow(),
                        lifetime=timedelta(hours=row.lifetime_hours), crl_url=settings.certs_ca_crl_url)
    except CertsError as exc:
        raise InvalidInput(str(exc)) from None
    record = cert_ca.record_issued(session=session, cert=cert, profile="server",
                                   requested_by=f"deployment:{row.id}")
    audit.record(session=session, ctx=ctx, action="certs.issue", target=f"certificate:{record.serial}",
                 details={"deployment": row.name, "common_name": row.common_name, "sans": row.sans,
                          "not_after": record.not_after})
    return deploy_issued(session=session, row=row, target=target, cert_pem=ca.pem(cert),
                         key_pem=ca.key_pem(key), chain_pem=issuer.chain_pem.encode(), ctx=ctx,
                         prober=prober, issued=record)


def refuse_unpinned(*, session: Session, row: CertDeployment, target: CertTarget | None,
                    chain_spki: list[str], ctx: AuditContext) -> RenewOutcome | None:
    """The ``refused`` outcome (audited, a high event) when the pinned target's pins match
    nothing of the new chain; None when the renewal may go on."""
    if target is None:
        return None
    try:
        certs.require_pins_allow(session=session, target_id=target.id, chain_spki=chain_spki)
    except Conflict as exc:
        row.status, row.last_error = "refused", exc.message[:1000]
        monitor.log_security_event("cert.renewal_refused", {"subject": row.name, "reason": exc.message},
                                   "high", session=session)
        audit.record(session=session, ctx=ctx, action="certs.renew.refused", target=f"deployment:{row.id}",
                     details={"reason": exc.message})
        return RenewOutcome(row.id, "refused", exc.message)
    return None


def deploy_issued(*, session: Session, row: CertDeployment, target: CertTarget | None, cert_pem: bytes,
                  key_pem: bytes, chain_pem: bytes, ctx: AuditContext, prober: TlsProber | None,
                  issued: CertIssued | None) -> RenewOutcome:
    """Deploy a newly issued pair for ``row`` and record the outcome (audit, event, state)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    serial = format(cert.serial_number, "x")
    spec = DeploySpec(Path(row.cert_path), Path(row.key_path),
                      Path(row.chain_path) if row.chain_path else None, tuple(row.reload_argv),
                      Endpoint(target.host or "", target.port or 0, target.sni, target.key)
                      if target is not None and target.kind == "endpoint" else None)
    result = Deployer(prober).deploy(spec, cert_pem, key_pem, chain_pem)
    details: dict[str, Any] = {"deployment": row.name, "issuer": row.issuer, "serial": serial,
                               "steps": result.steps, "reason": result.reason, "served": result.served}
    if result.status == "deployed":
        row.status, row.serial, row.fingerprint = "deployed", serial, result.fingerprint
        row.not_before, row.not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        row.last_deployed_at, row.last_error = utcnow(), None
        audit.record(session=session, ctx=ctx, action="certs.deploy", target=f"deployment:{row.id}",
                     details=details)
        monitor.log_security_event("cert.deployed", {"subject": row.name, **details}, "low", session=session)
        return RenewOutcome(row.id, "deployed")
    row.status, row.last_error = "rolled_back", (result.reason or "")[:1000]
    if issued is not None:
        issued.revoked_at, issued.revocation_reason = utcnow(), "superseded: the deployment was rolled back"
    audit.record(session=session, ctx=ctx, action="certs.rollback", target=f"deployment:{row.id}",
                 details=details)
    monitor.log_security_event("cert.rollback", {"subject": row.name, **details}, "high", session=session)
    return RenewOutcome(row.id, "rolled_back", result.reason)


def _key_for(row: CertDeployment) -> ec.EllipticCurvePrivateKey:
    if row.reuse_key and os.path.isfile(row.key_path):
        try:
            key = serialization.load_pem_private_key(Path(row.key_path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            raise InvalidInput(f"{row.key_path}: the deployed key cannot be read for reuse") from None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key
        raise InvalidInput(f"{row.key_path}: only EC keys are reused")
    return ec.generate_private_key(ec.SECP256R1())


def due_deployments(*, session: Session, settings: Settings, ids: list[str] | None) -> list[str]:
    query = select(CertDeployment)
    if ids:
        query = query.where(CertDeployment.id.in_(ids))
    return [r.id for r in session.scalars(query.order_by(CertDeployment.name))]


def issued_for(*, session: Session, deployment_id: str) -> list[CertIssued]:
    return list(session.scalars(select(CertIssued).where(
        CertIssued.requested_by == f"deployment:{deployment_id}").order_by(CertIssued.created_at)).all())


DEFAULT_SCHEDULE = "certs-renew (default)"


def ensure_default_schedule(*, session: Session, settings: Settings) -> Schedule | None:
    """The daily ``certs.renew`` schedule (``SECOPS_CERTS_RENEW_CRON``), created when no
    schedule of that kind exists; an operator disables it rather than deleting it."""
    if not settings.certs_renew_cron.strip():
        return None
    if session.scalar(select(Schedule.id).where(Schedule.kind == "certs.renew").limit(1)) is not None:
        return None
    return schedules.create_schedule(session=session, name=DEFAULT_SCHEDULE, kind="certs.renew", params={},
                                     created_by="system:certs", cron=settings.certs_renew_cron)
