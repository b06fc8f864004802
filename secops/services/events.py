"""Reading stored security events (they are written by ``monitor.log_security_event``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from secops.db.models import SecurityEvent


def list_events(
    *, session: Session, kind: str | None = None, limit: int = 100
) -> list[SecurityEvent]:
    query = select(SecurityEvent)
    if kind:
        query = query.where(SecurityEvent.kind == kind)
    return list(session.scalars(query.order_by(SecurityEvent.id.desc()).limit(limit)).all())
