"""The ``compliance.evaluate`` job: the matrix's live checks, stored as the job's result."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from secops.db.models import Job
from secops.services import compliance
from secops.services.redisconn import get_redis
from tasks.base import job_task


@job_task("compliance.evaluate")
def evaluate(session: Session, job: Job) -> dict[str, Any]:
    """Evaluate every control; the report (statuses, evidence, counts) is the result."""
    report = compliance.evaluate(session=session, kv=get_redis())
    session.commit()  # end the reads (on SQLite they hold the write lock)
    return report
