"""Liveness and readiness, without authentication.

``/readyz`` checks the secrets, the database, Redis and whether any worker answers a
ping, which takes a thread for about a second. So the answer is cached per API process
for ``SECOPS_READYZ_CACHE_SECONDS`` and computed by one request at a time in a worker
thread (others wait for it without holding a thread), each client address may ask
``SECOPS_READYZ_RATE`` times (counted in Redis, shared by every API process; while Redis
does not answer, counted in the process instead, since readiness must still answer then),
and the details (which check failed, which secret is unusable) go only to a caller with a
valid API key; anyone else gets the status alone. A failed check is logged with the
exception's type only (a database error may quote its URL).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from secops.api.deps import public
from secops.api.problems import problem
from secops.api.security import client_ip, limit_subject
from secops.config import API_SECRETS, OPTIONAL_KEYS, get_settings, parse_rate
from secops.db.base import utcnow
from secops.db.session import get_engine, get_read_sessionmaker
from secops.errors import AuthenticationFailed, ConfigurationError, Unavailable
from secops.services import keys as key_service
from secops.services import ratelimit
from secops.services.ratelimit import Bucket, BucketState, Decision, RateLimited
from secops.services.redisconn import get_redis

log = logging.getLogger("secops.api")
router = APIRouter(tags=["health"], dependencies=[Depends(public())])
MAX_CLIENTS = 10_000  # addresses remembered by the readiness limiter, oldest dropped


@router.get("/healthz", summary="The API process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@dataclass
class _Readiness:
    """One API process's readiness cache, limiter and single-flight lock."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answer: tuple[bool, dict[str, Any]] | None = None
    at: float = 0.0
    clients: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def admit(self, subject: str, limit: int, window: int) -> Decision:
        """Count one check for ``subject`` in Redis; in the process while Redis is down."""
        try:
            return ratelimit.check(get_redis(), [Bucket("readyz-ip", subject, limit, window)])
        except Unavailable:
            return self.admit_locally(subject, limit, window)

    def admit_locally(self, subject: str, limit: int, window: int) -> Decision:
        now = time.monotonic()
        hits = self.clients.pop(subject, None) or deque()
        while hits and hits[0] <= now - window:
            hits.popleft()
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        self.clients[subject] = hits
        while len(self.clients) > MAX_CLIENTS:
            self.clients.popitem(last=False)
        reset = max(1, int(window - (now - hits[0])) + 1) if hits else window
        state = BucketState(Bucket("readyz-ip", subject, limit, window), len(hits), reset,
                            0 if allowed else reset)
        return Decision(allowed, [state])


def _state(request: Request) -> _Readiness:
    state = getattr(request.app.state, "readiness", None)
    if state is None:
        state = request.app.state.readiness = _Readiness()
    return state


@router.get("/readyz", summary="Secrets set; database, Redis and at least one worker answer",
            responses={503: {"description": "a secret is unusable or a dependency is down"},
                       429: {"description": "too many readiness checks from this address"}})
async def readyz(request: Request) -> Any:
    settings = get_settings()
    state = _state(request)
    limit, window = parse_rate(settings.readyz_rate)
    decision = await run_in_threadpool(state.admit, limit_subject(client_ip(request)),
                                       limit, window)
    request.scope.setdefault("state", {})["ratelimit_headers"] = decision.headers()
    if not decision.allowed:
        raise RateLimited(decision)
    async with state.lock:  # one check at a time; the others wait for its answer
        if state.answer is None or time.monotonic() - state.at >= settings.readyz_cache_seconds:
            state.answer = await run_in_threadpool(_check)
            state.at = time.monotonic()
        ready, checks = state.answer
    detailed = await run_in_threadpool(_authenticated, request)
    if ready:
        return {"status": "ready", "checks": checks} if detailed else {"status": "ready"}
    extra = {"checks": checks} if detailed else {}
    body = problem(503, "not ready", request.scope.get("state", {}).get("request_id", ""),
                   **extra)
    return JSONResponse(body, status_code=503, media_type="application/problem+json")


def _authenticated(request: Request) -> bool:
    """Whether the caller sent a valid API key (any role): only then are details shown."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        session = get_read_sessionmaker()()
        try:
            key_service.authenticate(session=session, token=token.strip())
            return True
        finally:
            session.rollback()
            session.close()
    except AuthenticationFailed:
        return False
    except Exception as exc:  # noqa: BLE001 - no details when the key cannot be checked
        log.warning("readiness: the caller's key could not be checked (%s)",
                    type(exc).__name__)
        return False


def _check() -> tuple[bool, dict[str, Any]]:
    from tasks.app import app as celery_app
    from tasks.app import worker_count

    checks: dict[str, Any] = {"secrets": _secrets(), "checked_at": utcnow().isoformat()}
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        checks["database"] = "unavailable"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            conn.default_channel.client.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: the broker does not answer (%s)", type(exc).__name__)
        checks["redis"] = "unavailable"
    workers = worker_count(timeout=1.0) if checks["redis"] == "ok" else 0
    checks["workers"] = workers
    ready = all(checks[name] == "ok" for name in ("secrets", "database", "redis")) and workers > 0
    return ready, checks


def _secrets() -> Any:
    """``"ok"``, or each unusable secret's name with "not set" or "too short" (never a value)."""
    try:
        get_settings().require_secrets(*API_SECRETS, optional=OPTIONAL_KEYS)
    except ConfigurationError as exc:
        return exc.details.get("secrets", "invalid settings")
    return "ok"
