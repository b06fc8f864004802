"""/v1/alerts: alerts raised by the security rules; list and acknowledge."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from secops.api.deps import Principal, ReadSession, WriteSession, require
from secops.api.security import audit_context
from secops.api.security_schemas import AlertList, AlertRead
from secops.db.models import Alert
from secops.services import alerts as alert_service
from secops.services import audit

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
ReadsAlerts = Annotated[Principal, Depends(require("alerts:read"))]
AcknowledgesAlerts = Annotated[Principal, Depends(require("alerts:ack"))]


@router.get("", response_model=AlertList, summary="List alerts, most recent first")
def list_alerts(
    principal: ReadsAlerts,
    session: ReadSession,
    status: Annotated[str | None, Query(max_length=16)] = None,
    severity: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertList:
    rows, total = alert_service.list_alerts(session=session, status=status, severity=severity,
                                            limit=limit, offset=offset)
    return AlertList(items=[AlertRead.model_validate(a) for a in rows], total=total,
                     limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertRead, summary="Get an alert")
def get_alert(
    alert_id: Annotated[str, Path(max_length=64)],
    principal: ReadsAlerts,
    session: ReadSession,
) -> Alert:
    return alert_service.get_alert(session=session, alert_id=alert_id)


@router.post("/{alert_id}/acknowledge", response_model=AlertRead,
             summary="Acknowledge an alert (idempotent)")
def acknowledge(
    alert_id: Annotated[str, Path(max_length=64)],
    request: Request,
    principal: AcknowledgesAlerts,
    session: WriteSession,
) -> Alert:
    alert, changed = alert_service.acknowledge(session=session, alert_id=alert_id,
                                               actor=principal.actor)
    if changed:
        audit.record(session=session, ctx=audit_context(request, principal.actor),
                     action="alerts.acknowledge", target=f"alert:{alert.id}",
                     details={"rule": alert.rule, "severity": alert.severity})
    session.commit()
    return alert
