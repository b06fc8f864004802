"""Alert sinks that run as jobs: the signed webhook, retried with backoff when transient."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.db.models import Job
from secops.services import alerts as alert_service
from tasks.base import job_task


@job_task("alerts.deliver")
def deliver(session: Session, job: Job) -> dict[str, Any]:
    """POST the alert to the webhook; Unavailable (5xx, timeout) makes the job retry."""
    return alert_service.deliver_webhook(session=session, alert_id=str(job.params["alert_id"]))
