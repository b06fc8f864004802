"""Alerts after they are raised: listing, acknowledging, and the webhook sink.

The webhook body is the alert as JSON; ``X-SecOps-Signature: t=<unix time>,v1=<hex>``
carries HMAC-SHA256(``alert_webhook_secret``, ``"<t>.<body>"``), so a receiver can check
both origin and freshness. A network error, a 5xx, 408 or 429 is transient
(Unavailable: the ``alerts.deliver`` job retries with backoff); any other non-2xx is
permanent (the job fails, the alert stays stored and listed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import Alert
from secops.errors import InvalidInput, NotFound, Unavailable
from secops.services.monitor import SEVERITIES

STATUSES = ("open", "acknowledged")
SIGNATURE_HEADER = "X-SecOps-Signature"


def list_alerts(*, session: Session, status: str | None = None, severity: str | None = None,
                limit: int = 50, offset: int = 0) -> tuple[list[Alert], int]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    if severity is not None and severity not in SEVERITIES:
        raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}")
    query = select(Alert)
    if status:
        query = query.where(Alert.status == status)
    if severity:
        query = query.where(Alert.severity == severity)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Alert.last_seen_at.desc(), Alert.id)
                           .limit(limit).offset(offset)).all()
    return list(rows), total


def get_alert(*, session: Session, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound("alert not found")
    return alert


def acknowledge(*, session: Session, alert_id: str, actor: str) -> tuple[Alert, bool]:
    """Acknowledge an open alert; (alert, False) if it already was (idempotent)."""
    alert = get_alert(session=session, alert_id=alert_id)
    if alert.status == "acknowledged":
        return alert, False
    alert.status = "acknowledged"
    alert.acknowledged_by = actor[:120]
    alert.acknowledged_at = utcnow()
    session.flush()
    return alert, True


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {"id": alert.id, "rule": alert.rule, "severity": alert.severity,
            "title": alert.title, "subject": alert.subject, "status": alert.status,
            "occurrences": alert.occurrences, "details": alert.details,
            "first_seen_at": alert.first_seen_at.isoformat(),
            "last_seen_at": alert.last_seen_at.isoformat()}


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def deliver_webhook(*, session: Session, alert_id: str,
                    transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """POST the signed alert to the configured webhook; Unavailable on a transient failure."""
    settings = get_settings()
    if not settings.alert_webhook_url:
        return {"delivered": False, "reason": "no webhook configured"}
    secret = settings.secret("alert_webhook_secret").get_secret_value().encode()
    alert = get_alert(session=session, alert_id=alert_id)
    body = json.dumps(alert_payload(alert), sort_keys=True).encode()
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
    try:
        with httpx.Client(timeout=settings.alert_webhook_timeout, transport=transport,
                          follow_redirects=False) as client:
            response = client.post(settings.alert_webhook_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Unavailable(f"alert webhook unreachable ({type(exc).__name__})") from None
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise Unavailable(f"alert webhook answered {response.status_code}")
    if response.status_code >= 300:
        raise InvalidInput(f"alert webhook refused the alert ({response.status_code})")
    return {"delivered": True, "status": response.status_code}
