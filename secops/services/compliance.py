"""Live checks behind the compliance matrix (``secops.compliance``), and the evaluation.

Each check reads the running system (database, Redis, settings, the API's answers) and
returns a status with its evidence: a sentence a person can verify, plus the figures.
``evaluate`` runs them all; the ``compliance.evaluate`` job stores the report as its
result, and ``secops compliance report`` prints it as Markdown or JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis
from argon2 import extract_parameters
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from secops.compliance import Outcome, build_report
from secops.config import API_SECRETS, Settings, get_settings, parse_rate
from secops.db.base import utcnow
from secops.db.cert_models import CertSeen, CertTarget
from secops.db.console_models import User
from secops.db.models import Alert, ApiKey
from secops.services import audit, passwords
from secops.services import privacy as privacy_service
from secops.services import users as user_service
from secops.services.redisconn import REDIS_ERRORS

log = logging.getLogger("secops.compliance")
REQUIRED_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options",
                    "referrer-policy", "strict-transport-security")
Check = Callable[["Context"], Outcome]


class Context:
    def __init__(self, session: Session, kv: redis.Redis | None, settings: Settings,
                 now: datetime, api_url: str | None) -> None:
        self.session, self.kv, self.settings, self.now, self.api_url = (
            session, kv, settings, now, api_url)


def audit_chain(ctx: Context) -> Outcome:
    result = audit.verify(session=ctx.session)
    when = ctx.now.isoformat(timespec="seconds")
    data = result.as_dict()
    if result.ok:
        return Outcome("pass", f"audit chain verified at {when}: {result.checked} entries, "
                       f"head #{result.head_seq}", data)
    broken = result.first_broken
    return Outcome("fail", f"audit chain broken at #{broken.seq if broken else '?'} "
                   f"({broken.reason if broken else ''}), checked at {when}", data)


def audit_retention(ctx: Context) -> Outcome:
    days = ctx.settings.audit_retention_days
    status = "pass" if days >= 365 else "warn"
    return Outcome(status, f"audit entries kept {days} days before archiving "
                   f"(policy: at least 365)", {"retention_days": days})


def admin_mfa(ctx: Context) -> Outcome:
    admins = ctx.session.scalars(select(User).where(User.role == "admin",
                                                    User.disabled_at.is_(None))).all()
    enrolled = [u for u in admins if user_service.has_second_factor(session=ctx.session, user=u)]
    data = {"admins": len(admins), "with_mfa": len(enrolled)}
    if not admins:
        return Outcome("pass", "no active admin users (admin work goes through API keys)", data)
    status = "pass" if len(enrolled) == len(admins) else "fail"
    return Outcome(status, f"MFA enrolled for {len(enrolled)} of {len(admins)} admins", data)


def mfa_policy(ctx: Context) -> Outcome:
    roles = sorted(ctx.settings.console_mfa_roles)
    status = "pass" if "admin" in roles else "fail"
    return Outcome(status, f"MFA required for roles: {', '.join(roles) or 'none'}",
                   {"roles": roles})


def key_rotation(ctx: Context) -> Outcome:
    policy = ctx.settings.api_key_default_days
    cutoff = ctx.now - timedelta(days=policy)
    live = ctx.session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))).all()
    stale = [k.prefix for k in live if (k.rotated_at or k.created_at) < cutoff]
    expired = [k.prefix for k in live if k.expires_at is not None and k.expires_at <= ctx.now]
    data = {"active_keys": len(live), "older_than_policy": stale, "expired_not_revoked": expired,
            "policy_days": policy}
    status = "pass" if not stale and not expired else "warn" if not stale else "fail"
    return Outcome(status, f"{len(stale)} of {len(live)} unrevoked keys older than the "
                   f"{policy}-day rotation policy; {len(expired)} expired but not revoked", data)


def rate_limiting(ctx: Context) -> Outcome:
    limits = {cls: getattr(ctx.settings, f"rate_limit_{cls}") for cls in ("submit", "read", "auth")}
    limits["login_account"] = ctx.settings.rate_limit_login_account
    for value in limits.values():
        parse_rate(value)
    try:
        reachable = ctx.kv is not None and bool(ctx.kv.ping())
    except REDIS_ERRORS:
        reachable = False
    data = {"limits": limits, "redis_reachable": reachable}
    if not reachable:
        return Outcome("fail", "the rate limiter's Redis does not answer: requests are refused "
                       "(fail closed)", data)
    return Outcome("pass", "rate limits active: " + ", ".join(f"{k} {v}" for k, v in
                                                              limits.items()), data)


def security_headers(ctx: Context) -> Outcome:
    if not ctx.api_url:
        return Outcome("error", "no API URL to probe", {})
    url = ctx.api_url.rstrip("/") + "/console/login"
    try:
        resp = httpx.get(url, timeout=5, verify=True)
    except httpx.HTTPError as exc:
        return Outcome("error", f"the API did not answer at {url} ({type(exc).__name__})",
                       {"url": url})
    present = {h: resp.headers.get(h) for h in REQUIRED_HEADERS}
    missing = [h for h, v in present.items() if not v]
    csp = present["content-security-policy"] or ""
    data = {"url": url, "status": resp.status_code, "headers": present, "missing": missing}
    if "unsafe-inline" in csp or "unsafe-eval" in csp:
        return Outcome("fail", f"{url}: the CSP allows inline or eval'd script", data)
    if missing == ["strict-transport-security"] and url.startswith("http://"):
        return Outcome("warn", f"{url}: headers present; served over plain HTTP, so no HSTS "
                       "(put TLS in front or set SECOPS_HSTS)", data)
    if missing:
        return Outcome("fail", f"{url}: missing {', '.join(missing)}", data)
    return Outcome("pass", f"{url}: CSP with nonce, HSTS, framing, sniffing and referrer "
                   "headers present", data)


def session_policy(ctx: Context) -> Outcome:
    s = ctx.settings
    data = {"idle_seconds": s.console_idle_timeout, "absolute_seconds": s.console_absolute_timeout,
            "insecure_loopback": s.console_insecure_loopback}
    if s.console_insecure_loopback:
        return Outcome("warn", "the plain-HTTP loopback exception is on (development only)", data)
    status = "pass" if s.console_idle_timeout <= 1800 and s.console_absolute_timeout <= 43200 else "warn"
    return Outcome(status, f"sessions end after {s.console_idle_timeout // 60} min idle, "
                   f"{s.console_absolute_timeout // 3600} h at most; __Host- cookie, Secure, "
                   "HttpOnly, SameSite=Strict", data)


def password_policy(ctx: Context) -> Outcome:
    params = extract_parameters(passwords.hash_password("compliance probe password"))
    data = {"type": params.type.name, "memory_kib": params.memory_cost,
            "time_cost": params.time_cost, "parallelism": params.parallelism,
            "min_length": passwords.MIN_LENGTH, "max_length": passwords.MAX_LENGTH,
            "common_passwords": len(passwords.common_passwords())}
    ok = params.type.name == "ID" and params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    return Outcome("pass" if ok else "fail",
                   f"argon2id m={params.memory_cost} KiB t={params.time_cost} "
                   f"p={params.parallelism}; {passwords.MIN_LENGTH}-{passwords.MAX_LENGTH} "
                   f"characters; {data['common_passwords']} common passwords refused", data)


def encryption_at_rest(ctx: Context) -> Outcome:
    problems = []
    try:
        ctx.settings.require_secrets(*API_SECRETS)
    except Exception as exc:  # noqa: BLE001 - ConfigurationError: its message names no value
        problems.append(str(exc))
    data = {"ok": not problems}
    if problems:
        return Outcome("fail", "required keys missing or short: stored files cannot be "
                       "encrypted", data)
    return Outcome("pass", "stored files encrypted with AES-GCM (keys derived from "
                   "storage_key); TOTP secrets sealed the same way", data)


def alert_handling(ctx: Context) -> Outcome:
    day_ago = ctx.now - timedelta(hours=24)
    stale = ctx.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.status == "open", Alert.severity.in_(["high", "critical"]),
        Alert.first_seen_at < day_ago)) or 0
    open_total = ctx.session.scalar(select(func.count()).select_from(Alert).where(
        Alert.status == "open")) or 0
    data = {"open": open_total, "high_or_critical_open_over_24h": stale}
    return Outcome("pass" if stale == 0 else "fail",
                   f"{open_total} open alerts; {stale} high or critical open for more than "
                   "24 hours", data)


def security_txt(ctx: Context) -> Outcome:
    s = ctx.settings
    if not s.security_txt_contact or not s.security_txt_expires:
        return Outcome("fail", "no security.txt: set SECOPS_SECURITY_TXT_CONTACT and "
                       "SECOPS_SECURITY_TXT_EXPIRES", {})
    expires = datetime.fromisoformat(s.security_txt_expires)
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    days = (expires - ctx.now).days
    data = {"expires": expires.isoformat(), "days_left": days}
    if expires <= ctx.now:
        return Outcome("fail", f"security.txt expired on {expires.date()}", data)
    if days > 366:
        return Outcome("warn", "security.txt Expires is more than a year ahead (RFC 9116 "
                       "advises less)", data)
    return Outcome("pass" if days > 30 else "warn",
                   f"security.txt published, expires in {days} days", data)


def account_review(ctx: Context) -> Outcome:
    users = ctx.session.scalars(select(User)).all()
    stale_invites = [u.name for u in users if u.password_hash is None
                     and u.enrol_expires_at is not None and u.enrol_expires_at <= ctx.now]
    disabled = sum(1 for u in users if u.disabled_at is not None)
    data = {"users": len(users), "disabled": disabled, "expired_invitations": stale_invites}
    return Outcome("pass", f"{len(users)} console users ({disabled} disabled); "
                   f"{len(stale_invites)} expired invitations", data)


def certificates(ctx: Context) -> Outcome:
    """Certificates currently served or stored: none expired, none inside the alert window."""
    current = ctx.session.execute(
        select(CertTarget.key, CertSeen.not_after)
        .join(CertSeen, CertSeen.target_id == CertTarget.id)
        .where(CertSeen.current.is_(True), CertTarget.enabled.is_(True))).all()
    if not current:
        return Outcome("warn", "no certificate inventoried yet (register endpoints or files "
                       "and run certs.scan)", {"certificates": 0})
    window = timedelta(days=14)
    expired = sorted(key for key, not_after in current if not_after <= ctx.now)
    expiring = sorted(key for key, not_after in current if ctx.now < not_after <= ctx.now + window)
    data = {"certificates": len(current), "expired": expired, "expiring_14_days": expiring}
    if expired:
        return Outcome("fail", f"{len(expired)} of {len(current)} inventoried certificates "
                       "expired", data)
    if expiring:
        return Outcome("warn", f"{len(expiring)} of {len(current)} inventoried certificates "
                       "expire within 14 days", data)
    return Outcome("pass", f"{len(current)} inventoried certificates, none expiring within "
                   "14 days", data)


def dsr_deadlines(ctx: Context) -> Outcome:
    """Open data subject requests: none past its Art 12(3) due date, none about to be."""
    warning = timedelta(days=ctx.settings.privacy_due_warning_days)
    state = privacy_service.deadlines(session=ctx.session, now=ctx.now, warning=warning)
    overdue, due_soon, total = state.overdue, state.due_soon, state.open
    data = {"open": total, "overdue": overdue, "due_soon": due_soon}
    if overdue:
        return Outcome("fail", f"{len(overdue)} of {total} open data subject "
                       "requests are past their due date", data)
    if due_soon:
        return Outcome("warn", f"{len(due_soon)} of {total} open data subject "
                       f"requests are due within {warning.days} days", data)
    return Outcome("pass", f"{total} open data subject requests, all within "
                   "their deadlines", data)


CHECKS: dict[str, Check] = {f.__name__: f for f in (
    audit_chain, audit_retention, admin_mfa, mfa_policy, key_rotation, rate_limiting,
    security_headers, session_policy, password_policy, encryption_at_rest, alert_handling,
    security_txt, account_review, certificates, dsr_deadlines)}


def default_api_url(settings: Settings) -> str:
    if settings.api_url:
        return settings.api_url
    return settings.console_origin_value() if settings.console_origin else (
        f"http://{settings.api_host}:{settings.api_port}")


def evaluate(*, session: Session, kv: redis.Redis | None, api_url: str | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """Run every check; a check that raises is reported as ``error`` with its type."""
    settings = get_settings()
    ctx = Context(session, kv, settings, now or utcnow(), api_url or default_api_url(settings))
    outcomes = {}
    for name, check in CHECKS.items():
        try:
            outcomes[name] = check(ctx)
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others
            log.exception("compliance check failed", extra={"check": name})
            outcomes[name] = Outcome("error", f"the check failed ({type(exc).__name__})", {})
    return build_report(outcomes, ctx.now.isoformat(timespec="seconds"))
