"""The FastAPI application factory (``create_app``); nothing is built at import time.

Run it with ``uvicorn --factory secops.api.app:create_app`` (``secops up`` does). Without
the secrets it needs (``API_SECRETS``), it refuses to build: the process exits with one
line on stderr naming the setting, before it serves anything.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import configure_mappers
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from secops import __version__
from secops.api import console
from secops.api.deps import prepare_authentication
from secops.api.middleware import EdgeMiddleware
from secops.api.openapi import problem_openapi
from secops.api.problems import problem, status_for
from secops.api.routes import (
    alerts,
    anomaly,
    audit,
    dlp,
    health,
    jobs,
    keys,
    metrics,
    privacy,
    scans,
    schedules,
)
from secops.api.routes import cert_ca as cert_ca_routes
from secops.api.routes import certs as cert_routes
from secops.api.routes import suppressions as suppression_routes
from secops.api.security import report_event
from secops.config import API_SECRETS, OPTIONAL_KEYS, get_settings
from secops.db.session import warm_pool
from secops.errors import AuditChainBroken, ConfigurationError, DatabaseUnavailable, SecOpsError
from secops.services.ratelimit import RateLimited
from secops.services.storage import get_store

log = logging.getLogger("secops.api")
NO_JOB = "00000000-0000-0000-0000-000000000000"  # a job id no job has (they are random)
PROBLEM = "application/problem+json"


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def _problem_response(request: Request, status: int, detail: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="secops"'} if status == 401 else None
    return JSONResponse(problem(status, detail, _request_id(request), **extra),
                        status_code=status, media_type=PROBLEM, headers=headers)


async def _secops_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SecOpsError)
    status = status_for(exc)
    if status >= 500:
        log.error("service error", extra={"request_id": _request_id(request),
                                          "error": type(exc).__name__})
    if isinstance(exc, AuditChainBroken):
        await run_in_threadpool(report_event, "audit.chain_broken",
                                {"subject": "audit_log", "reason": "chain head row is missing",
                                 "path": request.url.path}, "critical")
    extra = {"errors": exc.details["errors"]} if "errors" in exc.details else {}
    response = _problem_response(request, status, exc.message, **extra)
    if isinstance(exc, DatabaseUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A database that cannot be reached, or SQLite's write lock held past the busy
    timeout by another process: a 503 to retry, never a 500 (nothing was written)."""
    log.error("database unavailable", extra={"request_id": _request_id(request),
                                             "error": type(exc).__name__})
    response = _problem_response(request, 503, "the database is busy or unavailable; "
                                 "try again later")
    response.headers["Retry-After"] = "5"
    return response


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    response = _problem_response(request, 429, exc.message)
    response.headers["Retry-After"] = str(exc.decision.retry_after)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
              for e in exc.errors()]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    if malformed:
        return _problem_response(request, 400, "request body is not valid JSON")
    return _problem_response(request, 422, "request validation failed", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = {404: "no such resource", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail) if exc.status_code < 500 else "error")
    return _problem_response(request, exc.status_code, detail)


@asynccontextmanager
async def _open_pool(_: FastAPI) -> AsyncIterator[None]:
    """Before the first request, which would otherwise wait for them: the ORM's mappers
    are configured, the database connections opened (see warm_pool) and the statements
    of the commonest requests (the key look-up, the job read) compiled."""
    await run_in_threadpool(configure_mappers)
    if await run_in_threadpool(warm_pool):
        await run_in_threadpool(_prepare_statements)
    yield


def _prepare_statements() -> None:
    """Run the key look-up and the job read on values nothing has (they find nothing);
    a database that fails here is logged, the requests report it."""
    try:
        prepare_authentication()
        jobs.read_job(NO_JOB)
    except SQLAlchemyError:
        log.warning("could not prepare the database statements", exc_info=True)


def create_app() -> FastAPI:
    """The API; SystemExit (one line, no traceback, no value) if a setting or secret is unusable."""
    try:
        settings = get_settings()
        # Fail fast: without these the API can neither authenticate, nor record what it
        # changes, nor store an upload.
        settings.require_secrets(*API_SECRETS, optional=OPTIONAL_KEYS)
    except ConfigurationError as exc:
        raise SystemExit(f"secops api: refusing to start: {exc.message}") from None
    store = get_store(settings)
    removed = store.prune_staging()  # uploads cut short by a crash
    if removed:
        log.warning("removed stale upload staging files", extra={"count": removed})
    moved = store.migrate_layout()  # a store written before the flat layout
    if moved:
        log.info("moved stored files to the flat layout", extra={"count": moved})
    app = FastAPI(
        title="SecOps API",
        version=__version__,
        description="Security operations as background jobs. Authenticate with "
        "`Authorization: Bearer <api key>`; errors are RFC 9457 problem+json.",
        docs_url=None,
        redoc_url=None,
        lifespan=_open_pool,
    )
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.add_exception_handler(SecOpsError, _secops_error)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(schedules.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    app.include_router(alerts.router)
    app.include_router(metrics.router)
    app.include_router(scans.router)
    app.include_router(dlp.router)
    app.include_router(cert_routes.router)
    app.include_router(cert_ca_routes.router)
    app.include_router(privacy.router)
    app.include_router(anomaly.router)
    app.include_router(suppression_routes.router)
    console.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After", "X-Request-Id"],
            max_age=600,
        )
    uploads = settings.upload_body_limit()
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes,
                       hsts=settings.hsts,
                       body_limits={"/v1/scans": uploads, "/v1/dlp/scans": uploads})
    return app
