"""The console's working pages: overview, alerts, jobs, scans and quarantine, DLP, audit
log, API keys, schedules. Each route declares a permission of the API's table and the
same services do the work, with the same audit entries; changes are ``POST`` forms
with the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import func, select

from secops.api.console.web import Console, check_sizes, console_require, form_value, page
from secops.compliance import FRAMEWORKS
from secops.config import get_settings
from secops.db.models import Alert, DlpScan, Job, ScanResult
from secops.db.session import get_read_sessionmaker
from secops.errors import InvalidInput
from secops.kinds import KINDS, QUEUES
from secops.services import alerts as alert_service
from secops.services import audit
from secops.services import certs as cert_service
from secops.services import jobs as job_service
from secops.services import keys as key_service
from secops.services import privacy as privacy_service
from secops.services import quarantine as quarantine_service
from secops.services import schedules as schedule_service
from secops.services.monitor import SEVERITIES
from secops.services.redisconn import REDIS_ERRORS
from secops.services.storage import get_store

router = APIRouter(prefix="/console", include_in_schema=False)
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def _workers() -> int:
    from tasks.app import worker_count

    return worker_count(timeout=0.5)


def _last_job(console: Console, kind: str) -> Job | None:
    return console.db.scalar(select(Job).where(Job.kind == kind, Job.status.in_(
        ["succeeded", "failed"])).order_by(Job.finished_at.desc()).limit(1))


@router.get("/")
async def overview(console: Console = Depends(console_require("account:self"))) -> Response:
    db = console.db
    open_alerts = dict(db.execute(select(Alert.severity, func.count()).where(
        Alert.status == "open").group_by(Alert.severity)).all())
    jobs_by_state = dict(db.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    depths: dict[str, int | None] = {}
    try:
        pipe = console.kv.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
        depths = dict(zip(QUEUES, pipe.execute(), strict=True))
    except REDIS_ERRORS:
        depths = dict.fromkeys(QUEUES)
    verify = _last_job(console, "audit.verify")
    compliance = _last_job(console, "compliance.evaluate") if "compliance.evaluate" in KINDS else None
    workers = await run_in_threadpool(_workers)
    expiring: list[tuple[str, float]] = []
    if console.can("certs:read"):
        rows, _ = cert_service.list_certificates(session=db, expiring_within=14, limit=10)
        expiring = [(key, seen.days_left) for seen, key in rows]
    deadlines = None
    if console.can("privacy:read"):
        deadlines = privacy_service.deadlines(
            session=db, now=datetime.now(UTC),
            warning=timedelta(days=get_settings().privacy_due_warning_days))
    return console.render(
        "overview.html", alerts={s: open_alerts.get(s, 0) for s in SEVERITIES},
        jobs={s: jobs_by_state.get(s, 0) for s in STATUSES}, depths=depths, workers=workers,
        verify=verify, compliance=compliance, expiring=expiring, deadlines=deadlines)


@router.get("/alerts")
async def alerts(console: Console = Depends(console_require("alerts:read")),
                 status: str = Query("open", max_length=16),
                 severity: str = Query("", max_length=16)) -> Response:
    try:
        rows, total = alert_service.list_alerts(session=console.db, status=status or None,
                                                severity=severity or None, limit=200)
    except InvalidInput as exc:
        return console.render("alerts.html", status=400, error=exc.message, rows=[], total=0,
                              filters={"status": status, "severity": severity})
    return console.render("alerts.html", rows=rows, total=total,
                          filters={"status": status, "severity": severity})


@router.post("/alerts/{alert_id}/ack")
@page
async def acknowledge(alert_id: str, console: Console = Depends(console_require("alerts:ack"))) -> Response:
    alert, changed = alert_service.acknowledge(session=console.db, alert_id=alert_id[:64],
                                               actor=console.actor)
    if changed:
        audit.record(session=console.db, ctx=console.audit(), action="alerts.acknowledge",
                     target=f"alert:{alert.id}", details={"rule": alert.rule,
                                                          "severity": alert.severity})
    console.db.commit()
    return console.redirect("/console/alerts")


@router.get("/jobs")
@page
async def jobs(console: Console = Depends(console_require("jobs:read")),
               kind: str = Query("", max_length=64), status: str = Query("", max_length=16),
               offset: int = Query(0, ge=0, le=10_000_000)) -> Response:
    filters = {"kind": kind, "status": status}
    if kind and kind not in KINDS:
        raise InvalidInput("unknown job kind")
    result = job_service.list_jobs(session=console.db, kind=kind or None, status=status or None,
                                   limit=50, offset=offset)
    return console.render("jobs.html", page=result, filters=filters, kinds=sorted(KINDS),
                          statuses=STATUSES)


@router.get("/jobs/{job_id}")
@page
async def job_detail(job_id: str, console: Console = Depends(console_require("jobs:read"))) -> Response:
    job = job_service.get_job(session=console.db, job_id=job_id[:64])
    return console.render("job.html", job=job)


@router.post("/jobs/{job_id}/cancel")
@page
async def cancel(job_id: str, console: Console = Depends(console_require("jobs:cancel"))) -> Response:
    job = job_service.cancel_job(session=console.db, job_id=job_id[:64])
    audit.record(session=console.db, ctx=console.audit(), action="jobs.cancel",
                 target=f"job:{job.id}", details={"kind": job.kind})
    console.db.commit()
    from tasks.app import app as celery_app

    celery_app.control.revoke(job.id, terminate=True, signal="SIGTERM")
    return console.redirect(f"/console/jobs/{job.id}")


@router.get("/scans")
async def scans(console: Console = Depends(console_require("scans:read"))) -> Response:
    rows = console.db.scalars(select(ScanResult).order_by(ScanResult.created_at.desc())
                              .limit(100)).all()
    quarantine = []
    if console.user is not None and "quarantine:manage" in _permissions(console):
        quarantine = quarantine_service.list_quarantine(session=console.db, limit=100)
    return console.render("scans.html", rows=rows, quarantine=quarantine)


def _permissions(console: Console) -> frozenset[str]:
    from secops.api.permissions import ROLE_PERMISSIONS

    return ROLE_PERMISSIONS.get(console.user.role if console.user else "", frozenset())


@router.post("/quarantine/{sha256}/{decision}")
@page
async def quarantine_decision(sha256: str, decision: str, console: Console = Depends(
        console_require("quarantine:manage"))) -> Response:
    decide = {"release": quarantine_service.release,
              "delete": quarantine_service.delete}.get(decision)
    if decide is None or len(sha256) != 64:
        raise InvalidInput("unknown decision or file")
    row = decide(session=console.db, sha256=sha256.lower(), ctx=console.audit())
    console.db.commit()
    quarantine_service.apply_decision(session=console.db, store=get_store(get_settings()), row=row)
    console.db.commit()
    return console.redirect("/console/scans")


@router.get("/dlp")
async def dlp(console: Console = Depends(console_require("dlp:read"))) -> Response:
    rows = console.db.scalars(select(DlpScan).order_by(DlpScan.created_at.desc()).limit(100)).all()
    return console.render("dlp.html", rows=rows)


def _when(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD) or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/audit")
@page
async def audit_log(console: Console = Depends(console_require("audit:read")),
                    actor: str = Query("", max_length=120), action: str = Query("", max_length=64),
                    since: str = Query("", max_length=40), until: str = Query("", max_length=40),
                    offset: int = Query(0, ge=0, le=10_000_000)) -> Response:
    filters = {"actor": actor, "action": action, "since": since, "until": until}
    rows, total = audit.list_entries(session=console.db, since=_when(since, "since"),
                                     until=_when(until, "until"), actor=actor or None,
                                     action=action or None, limit=100, offset=offset)
    return console.render("audit.html", rows=rows, total=total, filters=filters, offset=offset)


@router.get("/audit/export")
@page
async def audit_export(console: Console = Depends(console_require("audit:read")),
                       format: str = Query("jsonl", max_length=8),  # noqa: A002
                       since: str = Query("", max_length=40),
                       until: str = Query("", max_length=40)) -> Response:
    if format not in ("jsonl", "csv"):
        raise InvalidInput("format is jsonl or csv")
    start, end = _when(since, "since"), _when(until, "until")

    def body() -> Iterator[str]:
        after: int | None = 0
        while after is not None:
            with get_read_sessionmaker()() as session:
                chunk, after = audit.export_page(session=session, fmt=format, after=after,
                                                 since=start, until=end)
            yield chunk

    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    return console.finish(StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="secops-audit.{format}"'}))


@router.get("/keys")
async def keys(console: Console = Depends(console_require("keys:manage"))) -> Response:
    return _keys_page(console)


def _keys_page(console: Console, status: int = 200, **extra: Any) -> Response:
    rows = key_service.list_keys(session=console.db, include_revoked=True)
    return console.render("keys.html", status=status, rows=rows, roles=key_service.ROLES,
                          kinds=sorted(KINDS), issued=None, **extra)


@router.post("/keys")
@page
async def create_key(request: Request,
                     console: Console = Depends(console_require("keys:manage"))) -> Response:
    form = await request.form(max_files=0, max_fields=60)
    too_long = check_sizes(form, {"name": 100, "role": 20, "days": 5, "kinds": 64})
    if too_long:
        return _keys_page(console, status=400, error=too_long)
    days_text = form_value(form, "days").strip()
    if days_text and not days_text.isdigit():
        return _keys_page(console, status=400, error="expiry must be a whole number of days")
    kinds = [k for k in form.getlist("kinds") if isinstance(k, str)]
    issued = key_service.create_key(session=console.db, name=form_value(form, "name"),
                                    role=form_value(form, "role"), created_by=console.actor,
                                    allowed_kinds=kinds,
                                    expires_in_days=int(days_text) if days_text else None)
    record = issued.record
    audit.record(session=console.db, ctx=console.audit(), action="keys.create",
                 target=f"key:{record.id}", details={"name": record.name, "prefix": record.prefix,
                                                     "role": record.role,
                                                     "allowed_kinds": record.allowed_kinds})
    console.db.commit()
    return _keys_page(console, issued_secret=issued.plaintext, issued_name=record.name)


@router.post("/keys/{key_id}/{action}")
@page
async def key_action(key_id: str, action: str,
                     console: Console = Depends(console_require("keys:manage"))) -> Response:
    if action == "revoke":
        record = key_service.revoke_key(session=console.db, key_id=key_id[:64])
        audit.record(session=console.db, ctx=console.audit(), action="keys.revoke",
                     target=f"key:{record.id}", details={"prefix": record.prefix})
        console.db.commit()
        return console.redirect("/console/keys")
    if action == "rotate":
        issued = key_service.rotate_key(session=console.db, key_id=key_id[:64])
        record = issued.record
        audit.record(session=console.db, ctx=console.audit(), action="keys.rotate",
                     target=f"key:{record.id}",
                     details={"prefix": record.prefix,
                              "previous_valid_until": record.previous_valid_until})
        console.db.commit()
        return _keys_page(console, issued_secret=issued.plaintext, issued_name=record.name)
    raise InvalidInput("unknown action")


@router.get("/schedules")
async def schedules(console: Console = Depends(console_require("schedules:read"))) -> Response:
    rows = schedule_service.list_schedules(session=console.db)
    return console.render("schedules.html", rows=rows,
                          next_run={s.id: schedule_service.next_run(s) for s in rows if s.enabled})




@router.get("/compliance")
async def compliance_page(console: Console = Depends(console_require("audit:read"))) -> Response:
    job = console.db.scalar(select(Job).where(Job.kind == "compliance.evaluate",
                                              Job.status == "succeeded")
                            .order_by(Job.finished_at.desc()).limit(1))
    return console.render("compliance.html", job=job, report=job.result if job else None,
                          frameworks=FRAMEWORKS)


@router.post("/compliance/evaluate")
@page
async def compliance_evaluate(console: Console = Depends(console_require("jobs:submit"))) -> Response:
    job = job_service.create_job(session=console.db, kind="compliance.evaluate", params={},
                                 submitted_by=console.actor)
    console.db.flush()
    audit.record(session=console.db, ctx=console.audit(), action="jobs.submit",
                 target=f"job:{job.id}", details={"kind": job.kind})
    console.db.commit()
    from tasks.dispatch import enqueue_or_fail

    enqueue_or_fail([(job.id, job.kind)])
    return console.redirect(f"/console/jobs/{job.id}")
