"""Liveness and readiness, without authentication."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from secops.api.deps import public
from secops.api.problems import problem
from secops.config import API_SECRETS, OPTIONAL_KEYS, get_settings
from secops.db.session import get_engine
from secops.errors import ConfigurationError

router = APIRouter(tags=["health"], dependencies=[Depends(public())])


@router.get("/healthz", summary="The API process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Secrets set; database, Redis and at least one worker answer",
            responses={503: {"description": "a secret is unusable or a dependency is down"}})
def readyz(request: Request) -> Any:
    from tasks.app import app as celery_app

    checks: dict[str, Any] = {"secrets": _secrets()}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            conn.default_channel.client.ping()
        checks["redis"] = "ok"
    except Exception:
        checks["redis"] = "unavailable"
    workers = 0
    if checks["redis"] == "ok":
        try:
            workers = len(celery_app.control.ping(timeout=1.0) or [])
        except Exception:
            workers = 0
    checks["workers"] = workers
    if all(checks[name] == "ok" for name in ("secrets", "database", "redis")) and workers > 0:
        return {"status": "ready", "checks": checks}
    body = problem(503, "not ready", request.scope.get("state", {}).get("request_id", ""),
                   checks=checks)
    return JSONResponse(body, status_code=503, media_type="application/problem+json")


def _secrets() -> Any:
    """``"ok"``, or each unusable secret's name with "not set" or "too short" (never a value)."""
    try:
        get_settings().require_secrets(*API_SECRETS, optional=OPTIONAL_KEYS)
    except ConfigurationError as exc:
        return exc.details.get("secrets", "invalid settings")
    return "ok"
