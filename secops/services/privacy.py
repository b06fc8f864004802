"""Data subject requests on the platform (GDPR Art 12, 15-21).

A request moves through::

    awaiting_verification --code--> verified --job--> in_progress --> completed
             |                                              |     \\--> needs_review (erasure left data)
             \\--> rejected (closed unverified)              \\--> failed (a job gave up)
    failed --retry--> in_progress;  failed --close--> rejected
    restriction / objection: verified --> in_progress --close--> completed

Every transition is appended to the request's ``history`` and written to the audit log.
The subject's identities, contact address and rectification values are sealed
(AES-GCM, key derived from ``storage_key``) and dropped when the request is done;
duplicates of an open request are found by the keyed ``identity_hash`` (the privacy
engine's subject hash) and type.

Identity is proved by a six-digit one-time code mailed to the contact address (or
posted, signed, to the alert webhook for the application to deliver): valid
``privacy_code_ttl`` seconds, single use, void after ``privacy_code_max_attempts`` wrong
tries, at most ``privacy_code_sends`` codes per request. Due dates follow Art 12(3): one
calendar month from receipt, extendable once by two more months with a reason. Beat's
``privacy.deadlines`` raises security events a configurable number of days before a due
date and when it has passed; monitor rules turn them into alerts.
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from secops.config import SECRET_MIN_LENGTH, Settings, parse_rate, read_secret
from secops.db.base import utcnow
from secops.db.models import Job, JobStatus, PrivacyRequest, PrivacyStoreErasure
from secops.errors import Conflict, InvalidInput, NotFound
from secops.kinds import KINDS
from secops.privacy import (
    DataMap,
    load_map,
    parse_identities,
    subject_hash,
)
from secops.privacy.connector import SqlConnector
from secops.privacy.rectify import parse_updates
from secops.services import audit, monitor
from secops.services.audit import AuditContext
from secops.services.mailer import post_webhook, send_mail
from secops.services.storage import derive_key

TYPES = ("access", "portability", "rectification", "erasure", "restriction", "objection")
OPEN = ("awaiting_verification", "verified", "in_progress")
UNANSWERED = (*OPEN, "failed")  # the Art 12(3) clock still runs for these
JOB_KINDS = {
    "access": "privacy.export",
    "portability": "privacy.export",
    "erasure": "privacy.erase",
    "rectification": "privacy.rectify",
}
DUE_SOON, OVERDUE, CODE_FAILED = "privacy.request_due_soon", "privacy.request_overdue", "privacy.code_failed"
WRONG_CODE = "the code is wrong, used or expired"
for _rule in (
    monitor.AlertRule(
        DUE_SOON,
        frozenset({DUE_SOON}),
        "request_id",
        0,
        86400,
        "medium",
        "a data subject request is due soon",
    ),
    monitor.AlertRule(
        OVERDUE,
        frozenset({OVERDUE}),
        "request_id",
        0,
        86400,
        "high",
        "a data subject request is overdue (Art 12(3))",
    ),
    monitor.AlertRule(
        "privacy.code_failures",
        frozenset({CODE_FAILED}),
        "submitted_by",
        10,
        3600,
        "high",
        "many failed identity verifications from one submitter",
    ),
):
    monitor.register_rule(_rule)


# -- keys, sealing, dates -------------------------------------------------------------------


class NotConfigured(Conflict):
    """Privacy is not set up on this platform: the platform's state, so 409 and not 500."""

    title = "Privacy not configured"


def hash_key(settings: Settings) -> bytes:
    value = settings.privacy_hmac
    if value is None or len(value.get_secret_value()) < SECRET_MIN_LENGTH:
        raise NotConfigured(f"secret privacy_hmac is not set or shorter than {SECRET_MIN_LENGTH} characters")
    return value.get_secret_value().encode("utf-8")


def _seal_key(settings: Settings) -> bytes:
    return derive_key(settings.secret("storage_key").get_secret_value(), b"privacy sealed v1")


def seal(settings: Settings, request_id: str, data: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    ct = AESGCM(_seal_key(settings)).encrypt(nonce, json.dumps(data).encode(), request_id.encode())
    return base64.b64encode(nonce + ct).decode("ascii")


def unseal(settings: Settings, req: PrivacyRequest) -> dict[str, Any]:
    if req.sealed is None:
        raise Conflict("the request's identities were already dropped")
    raw = base64.b64decode(req.sealed)
    data: dict[str, Any] = json.loads(
        AESGCM(_seal_key(settings)).decrypt(raw[:12], raw[12:], req.id.encode())
    )
    return data


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day ``months`` calendar months later (the month's last day if shorter)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def datamap(settings: Settings) -> DataMap:
    """The platform's map (``SECOPS_PRIVACY_MAP``), read again when the file changes."""
    return _loaded(settings)[0]


def shared_connector(settings: Settings) -> SqlConnector:
    """The process's connector to the map's stores: engines and reflected tables are kept
    between jobs (pooled connections), and renewed when the map file changes."""
    return _loaded(settings)[1]


def _loaded(settings: Settings) -> tuple[DataMap, SqlConnector]:
    if settings.privacy_map is None:
        raise NotConfigured("no personal-data map: set SECOPS_PRIVACY_MAP")
    try:
        version = settings.privacy_map.stat().st_mtime_ns
    except OSError:
        version = -1  # load_map says what is wrong
    return _load(str(settings.privacy_map), version)


@lru_cache(maxsize=1)
def _load(path: str, version: int) -> tuple[DataMap, SqlConnector]:
    def resolve(name: str) -> str | None:
        value = read_secret(name)
        return value.get_secret_value() if value is not None else None

    dm = load_map(path)
    return dm, SqlConnector(dm, resolve)


def _transition(
    session: Session,
    req: PrivacyRequest,
    status: str,
    ctx: AuditContext,
    note: str | None = None,
    **details: Any,
) -> None:
    entry = {"at": utcnow().isoformat(), "from": req.status, "to": status, "actor": ctx.actor}
    if note:
        entry["note"] = note[:500]
    req.history = [*req.history, entry]
    req.status = status
    audit.record(
        session=session,
        ctx=ctx,
        action=f"privacy.request.{status}",
        target=f"privacy_request:{req.id}",
        details={"type": req.type, "from": entry["from"], **details},
    )


# -- requests -------------------------------------------------------------------------------


def create_request(
    *,
    session: Session,
    settings: Settings,
    ctx: AuditContext,
    type: str,
    identities: dict[str, str],
    contact: str,
    rectification: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> PrivacyRequest:
    """Record a request and mail its first code; Conflict for a duplicate of an open one."""
    if type not in TYPES:
        raise InvalidInput(f"type must be one of {', '.join(TYPES)}")
    webhook = settings.privacy_code_sink == "webhook"
    sink = ("SECOPS_ALERT_WEBHOOK_URL", settings.alert_webhook_url) if webhook else (
        "SECOPS_SMTP_HOST", settings.smtp_host)
    missing = [
        name
        for name, value in (
            ("SECOPS_PRIVACY_MAP", settings.privacy_map),
            ("privacy_hmac", settings.privacy_hmac),
            sink,
        )
        if not value
    ]
    if missing:
        raise NotConfigured(f"privacy requests are not configured here (set {', '.join(missing)})")
    dm = datamap(settings)
    subject = parse_identities([f"{k}={v}" for k, v in identities.items()], dm)
    updates = rectification or {}
    if type == "rectification":
        parse_updates(dm, updates)
    elif updates:
        raise InvalidInput("rectification values are only for rectification requests")
    digest = subject_hash(hash_key(settings), subject)
    existing = session.scalars(
        select(PrivacyRequest).where(
            PrivacyRequest.identity_hash == digest,
            PrivacyRequest.type == type,
            PrivacyRequest.status.in_(OPEN),
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"an open request of this type exists for this subject: {existing.id}",
            details={"request_id": existing.id},
        )
    received = now or utcnow()
    req = PrivacyRequest(
        type=type,
        status="awaiting_verification",
        identity_hash=digest,
        identity_types=sorted(subject),
        submitted_by=ctx.actor,
        received_at=received,
        due_at=add_months(received, 1),
        code_attempts=0,
        code_sends=[],
        history=[],
    )
    session.add(req)
    session.flush()
    req.sealed = seal(settings, req.id, {"identities": subject, "contact": contact, "rectification": updates})
    req.history = [
        {"at": received.isoformat(), "from": None, "to": "awaiting_verification", "actor": ctx.actor}
    ]
    audit.record(
        session=session,
        ctx=ctx,
        action="privacy.request.received",
        target=f"privacy_request:{req.id}",
        details={"type": type, "identity_types": req.identity_types, "due_at": req.due_at.isoformat()},
    )
    send_code(session=session, settings=settings, req=req, ctx=ctx, now=received)
    return req


def get_request(*, session: Session, request_id: str) -> PrivacyRequest:
    req = session.get(PrivacyRequest, request_id)
    if req is None:
        raise NotFound("privacy request not found")
    return req


def list_requests(*, session: Session, status: str | None = None, limit: int = 100) -> list[PrivacyRequest]:
    stmt = select(PrivacyRequest).order_by(PrivacyRequest.received_at.desc()).limit(limit)
    if status == "open":
        stmt = stmt.where(PrivacyRequest.status.in_(OPEN))
    elif status:
        stmt = stmt.where(PrivacyRequest.status == status)
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class Deadlines:
    """Open requests against their Art 12(3) due dates at one moment."""

    open: int
    overdue: list[str]  # request ids past their due date
    due_soon: list[str]  # request ids due within the warning period


def deadlines(*, session: Session, now: dt.datetime, warning: dt.timedelta) -> Deadlines:
    """Which open (or failed) requests are overdue and which fall due within ``warning`` of ``now``."""
    rows = session.execute(select(PrivacyRequest.id, PrivacyRequest.due_at)
                           .where(PrivacyRequest.status.in_(UNANSWERED))).all()
    return Deadlines(open=len(rows),
                     overdue=sorted(rid for rid, due in rows if due <= now),
                     due_soon=sorted(rid for rid, due in rows if now < due <= now + warning))


def send_code(
    *,
    session: Session,
    settings: Settings,
    req: PrivacyRequest,
    ctx: AuditContext,
    now: dt.datetime | None = None,
) -> None:
    """Mail a fresh one-time code (the previous one is void); rate limited per request."""
    now = now or utcnow()
    if req.status != "awaiting_verification":
        raise Conflict("the request is not awaiting verification")
    count, window = parse_rate(settings.privacy_code_sends)
    recent = [t for t in req.code_sends if dt.datetime.fromisoformat(t) > now - dt.timedelta(seconds=window)]
    if len(recent) >= count:
        raise Conflict("too many codes sent for this request; try again later")
    code = f"{secrets.randbelow(10**6):06d}"
    contact = unseal(settings, req)["contact"]
    if settings.privacy_code_sink == "webhook":
        post_webhook(settings, {
            "type": "privacy.code", "request_id": req.id, "contact": contact, "code": code,
            "expires_at": (now + dt.timedelta(seconds=settings.privacy_code_ttl)).isoformat()})
    else:
        send_mail(
            settings,
            to=contact,
            subject="Your verification code",
            body=f"Your code to confirm your data protection request is {code}.\n"
            f"It is valid for {settings.privacy_code_ttl // 60} minutes and can be used once.\n",
        )
    req.code_hash = _mac(hash_key(settings), f"{req.id}:{code}")
    req.code_expires_at = now + dt.timedelta(seconds=settings.privacy_code_ttl)
    req.code_attempts = 0
    req.code_sends = [*recent, now.isoformat()]
    audit.record(
        session=session,
        ctx=ctx,
        action="privacy.code.sent",
        target=f"privacy_request:{req.id}",
        details={"sends_in_window": len(req.code_sends)},
    )


@dataclass
class Verified:
    request: PrivacyRequest
    job: tuple[str, str] | None
    download_token: str | None


def verify_code(
    *,
    session: Session,
    settings: Settings,
    req: PrivacyRequest,
    code: str,
    ctx: AuditContext,
    now: dt.datetime | None = None,
) -> Verified:
    """Check the code (single use, expiring, limited tries) and start the request's work.

    A wrong code raises InvalidInput after counting the attempt (the boundary commits it
    and reports a ``privacy.code_failed`` security event)."""
    now = now or utcnow()
    if req.status != "awaiting_verification" or req.code_hash is None:
        audit.record(
            session=session,
            ctx=ctx,
            action="privacy.code.failed",
            target=f"privacy_request:{req.id}",
            details={"attempts": req.code_attempts, "void": True, "reason": "no code pending"},
        )
        raise InvalidInput(WRONG_CODE)
    expected = _mac(hash_key(settings), f"{req.id}:{code.strip()}")
    if (
        req.code_expires_at is None
        or req.code_expires_at <= now
        or not hmac.compare_digest(expected, req.code_hash)
    ):
        req.code_attempts += 1
        void = req.code_attempts >= settings.privacy_code_max_attempts or (
            req.code_expires_at is not None and req.code_expires_at <= now
        )
        if void:
            req.code_hash = None
        audit.record(
            session=session,
            ctx=ctx,
            action="privacy.code.failed",
            target=f"privacy_request:{req.id}",
            details={"attempts": req.code_attempts, "void": void},
        )
        raise InvalidInput(WRONG_CODE)
    req.code_hash, req.code_expires_at, req.verified_at = None, None, now
    _transition(session, req, "verified", ctx)
    kind = JOB_KINDS.get(req.type)
    token = None
    if kind is None:  # restriction, objection: the DPO acts and closes the request
        _transition(session, req, "in_progress", ctx)
        return Verified(req, None, None)
    job = Job(
        kind=kind,
        params=KINDS[kind].validate({"request_id": req.id}),
        status=JobStatus.queued.value,
        attempts=0,
        submitted_by=req.submitted_by,
    )
    session.add(job)
    session.flush()
    req.job_id = job.id
    if kind == "privacy.export":
        token = secrets.token_urlsafe(32)
        req.download_hash = _mac(hash_key(settings), f"download:{req.id}:{token}")
    _transition(session, req, "in_progress", ctx, job_id=job.id)
    return Verified(req, (job.id, job.kind), token)


def extend(*, session: Session, req: PrivacyRequest, reason: str, ctx: AuditContext) -> PrivacyRequest:
    """Art 12(3): two more months, once, with a reason."""
    if req.status not in OPEN:
        raise Conflict("the request is closed")
    if req.extended_at is not None:
        raise Conflict("the request was already extended (Art 12(3) allows one extension)")
    if not reason.strip():
        raise InvalidInput("an extension needs a reason")
    old = req.due_at
    req.due_at, req.extended_at, req.extension_reason = add_months(old, 2), utcnow(), reason.strip()[:2000]
    req.history = [
        *req.history,
        {
            "at": utcnow().isoformat(),
            "from": req.status,
            "to": req.status,
            "actor": ctx.actor,
            "note": f"extended to {req.due_at.isoformat()}",
        },
    ]
    audit.record(
        session=session,
        ctx=ctx,
        action="privacy.request.extended",
        target=f"privacy_request:{req.id}",
        details={"from": old.isoformat(), "to": req.due_at.isoformat()},
    )
    return req


def close(
    *, session: Session, req: PrivacyRequest, outcome: str, note: str, ctx: AuditContext
) -> PrivacyRequest:
    """Close by hand: restriction/objection done (``completed``) or a request refused (``rejected``)."""
    if outcome not in ("completed", "rejected"):
        raise InvalidInput("outcome must be completed or rejected")
    if req.status == "failed" and outcome == "rejected":
        pass  # a failed request the DPO gives up on (instead of retrying it)
    elif req.status not in OPEN and req.status != "needs_review":
        raise Conflict("the request is closed")
    if (
        outcome == "completed"
        and req.status != "needs_review"
        and (req.type in JOB_KINDS or req.status != "in_progress")
    ):
        raise Conflict(
            "only a verified restriction or objection, or an erasure under review, is closed by hand"
        )
    req.sealed, req.code_hash, req.completed_at = None, None, utcnow()
    session.execute(delete(PrivacyStoreErasure).where(PrivacyStoreErasure.request_id == req.id))
    _transition(session, req, outcome, ctx, note)
    return req


# -- deadlines ------------------------------------------------------------------------------


def check_deadlines(
    *, session: Session, settings: Settings, kv: redis.Redis | None, now: dt.datetime | None = None
) -> list[tuple[str, str]]:
    """Security events (hence alerts) for open or failed requests due soon or overdue; each once."""
    now = now or utcnow()
    soon = now + dt.timedelta(days=settings.privacy_due_warning_days)
    deliveries: list[tuple[str, str]] = []
    for req in session.scalars(
        select(PrivacyRequest).where(PrivacyRequest.status.in_(UNANSWERED), PrivacyRequest.due_at <= soon)
    ):
        details = {"request_id": req.id, "type": req.type, "due_at": req.due_at.isoformat()}
        if req.due_at <= now and req.overdue_at is None:
            req.overdue_at = req.warned_at = now
            deliveries += monitor.log_security_event(
                OVERDUE, details, "high", session=session, kv=kv
            ).deliveries
        elif req.due_at > now and req.warned_at is None:
            req.warned_at = now
            deliveries += monitor.log_security_event(
                DUE_SOON, details, "medium", session=session, kv=kv
            ).deliveries
    return deliveries
