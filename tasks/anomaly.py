"""Anomaly kind: ``anomaly.ingest`` reads new log lines (files, an API batch, own events)
and detects; alerts go out through the monitor once the run has committed."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.models import Job
from secops.services import anomaly
from secops.services.redisconn import get_redis
from tasks.base import job_task
from tasks.dispatch import publish_after_commit


@job_task("anomaly.ingest")
def ingest(session: Session, job: Job) -> dict[str, Any]:
    """One detection run; its checkpoints commit with the job's completion."""
    summary, deliveries = anomaly.run_job(session=session, kv=get_redis(), job=job,
                                          settings=get_settings())
    publish_after_commit(session, deliveries)
    return summary
