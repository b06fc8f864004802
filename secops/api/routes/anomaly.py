"""/v1/anomaly: log lines sent by shippers, detected by an ``anomaly.ingest`` job.

The body is bounded by ``SECOPS_MAX_BODY_BYTES`` (413 beyond), the number and length of
lines by the anomaly settings (422), the rate by the caller's key (``submit`` class).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_read_session, db_session, require, visible
from secops.api.security import audit_context
from secops.config import get_settings
from secops.db.models import AnomalyBatch, Job
from secops.errors import PermissionDenied
from secops.services import anomaly as anomaly_service
from secops.services import audit
from tasks.dispatch import enqueue_or_fail

router = APIRouter(prefix="/v1/anomaly", tags=["anomaly"])


class AnomalyBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=200, description="where the lines come from")
    format: Literal["syslog", "combined", "jsonl"] | None = Field(
        None, description="the lines' format; detected when absent")
    lines: list[str] = Field(..., min_length=1)


class AnomalyBatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    job_id: str | None
    source: str
    format: str | None
    line_count: int
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    processed_at: datetime | None = None


def batch_read(session: Session, batch: AnomalyBatch) -> AnomalyBatchRead:
    out = AnomalyBatchRead.model_validate(batch)
    if batch.status == "pending" and batch.job_id:
        job = session.get(Job, batch.job_id)
        if job is not None and job.status in ("failed", "cancelled"):
            out.status, out.error = "failed", job.error or job.status
    return out


@router.post("/ingest", status_code=202, response_model=AnomalyBatchRead,
             summary="Send a batch of log lines for anomaly detection")
def ingest(
    body: AnomalyBatchCreate,
    request: Request,
    principal: Principal = Depends(require("anomaly:ingest")),
    session: Session = Depends(db_session),
) -> AnomalyBatchRead:
    if not principal.may_submit(anomaly_service.KIND):
        raise PermissionDenied("this key may not submit that job kind")
    try:
        batch, job = anomaly_service.submit_batch(
            session=session, source=body.source, fmt=body.format, lines=body.lines,
            submitted_by=principal.actor, settings=get_settings())
        audit.record(session=session, ctx=audit_context(request, principal.actor),
                     action="anomaly.ingest", target=f"anomaly_batch:{batch.id}",
                     details={"source": batch.source, "format": batch.format,
                              "lines": batch.line_count, "job_id": job[0]})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    enqueue_or_fail([job])
    return batch_read(session, batch)


@router.get("/batches/{batch_id}", response_model=AnomalyBatchRead,
            summary="A batch sent for detection: status and the run's summary")
def get_batch(
    batch_id: Annotated[str, Path(max_length=36)],
    principal: Principal = Depends(require("anomaly:read")),
    session: Session = Depends(db_read_session),
) -> AnomalyBatchRead:
    batch = visible(anomaly_service.get_batch(session=session, batch_id=batch_id), principal, "batch")
    return batch_read(session, batch)
