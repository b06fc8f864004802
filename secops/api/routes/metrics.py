"""/metrics: Prometheus text format for a scraper holding an admin, auditor or service key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.orm import Session

from secops.api.deps import Principal, db_read_session, require
from secops.api.security import optional_redis
from secops.services import metrics

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {}}}})
def scrape(
    principal: Principal = Depends(require("metrics:read")),
    session: Session = Depends(db_read_session),
) -> Response:
    return Response(metrics.render(session=session, kv=optional_redis()),
                    media_type=CONTENT_TYPE_LATEST)
