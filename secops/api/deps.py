"""FastAPI dependencies: a session per request, the authenticated principal, permissions.

``require(permission)`` is the whole front door of a protected route, in this order:
refuse a client IP whose failed-authentication budget (class ``auth``) is spent, before
any database work; authenticate the bearer key against the database, or against this
process's memory of it for a few seconds unless the keys' generation in Redis moved
(read in the same round trip as the budget, so revocation still takes effect at the
next request on every process; see services.keys); on failure, spend one unit of that budget
and raise a security event; then count the request against its route class for both
the client IP and the key (one atomic Redis step) and check the role. For a key this
process remembers, the budget's check, the generation, the key's use and the class's
count are one Lua script (one round trip): the count happens only if the budget allows
and the generation is still the remembered one, else the key is looked up as above.
Redis down means 503 (fail closed) and a security event. Response headers for the rate
limit are left in the request scope for the edge middleware.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeVar, cast

from fastapi import Depends, Header, Request
from redis import Redis
from redis.client import Pipeline
from sqlalchemy.orm import Session

from secops.api.permissions import ALL_PERMISSIONS, PUBLIC, allowed, route_class
from secops.api.security import client_ip, limit_subject, report_event
from secops.config import get_settings
from secops.db.session import get_read_sessionmaker, get_sessionmaker
from secops.errors import AuthenticationFailed, NotFound, PermissionDenied, Unavailable
from secops.kinds import KINDS
from secops.services import keys as key_service
from secops.services import ratelimit
from secops.services.metrics import count_rate_limited
from secops.services.redisconn import get_redis

# Requests that create work accept this header (see ``services.idempotency``).
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def db_session() -> Iterator[Session]:
    """One session per request; the route commits what it changes, the rest is rolled back."""
    session = get_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def db_read_session() -> Iterator[Session]:
    """A session for a request that only reads (``PRAGMA query_only`` on SQLite, where it
    takes no write lock); the route reads one snapshot."""
    session = get_read_sessionmaker()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    allowed_kinds: frozenset[str] = field(default_factory=frozenset)

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    def may_submit(self, kind: str) -> bool:
        spec = KINDS.get(kind)
        if spec is not None and spec.roles is not None and self.role not in spec.roles:
            return False
        return self.role != "service" or kind in self.allowed_kinds

    @property
    def sees_only_own(self) -> bool:
        return self.role == "service"

    def can_see(self, submitted_by: str) -> bool:
        """Service keys see only what they submitted; other roles see everything."""
        return not self.sees_only_own or submitted_by == self.actor


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` (blocking database or Redis work) in a worker thread and wait for it.

    The hot paths (authentication, the single-job submit and read) use this rather than
    Starlette's thread pool: a plain executor hand-off costs the event loop less than
    anyio's (measured: docs/performance.md, single-job submits). Same limit of threads
    as anyio's default (40); the context is carried into the thread."""
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=40, thread_name_prefix="secops-api")
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor, context.run, fn)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _bucket(name: str, subject: str, cls: str) -> ratelimit.Bucket:
    limit, window = get_settings().rate_limit(cls)
    return ratelimit.Bucket(name, subject, limit, window)


def _limit(request: Request, buckets: list[ratelimit.Bucket], *, cost: int, cls: str,
           ip: str, along: Callable[[Pipeline], object] | None = None) -> ratelimit.Decision:
    kv = get_redis()
    try:
        decision = ratelimit.check(kv, buckets, cost=cost, along=along)
    except Unavailable:
        raise _limiter_down(request, ip) from None
    return _admit(request, decision, cls, ip, kv)


def _limiter_down(request: Request, ip: str) -> Unavailable:
    report_event("ratelimit.unavailable",
                 {"subject": "redis", "ip": ip, "path": request.url.path}, "high")
    return Unavailable("rate limiting is unavailable; try again later")


def _admit(request: Request, decision: ratelimit.Decision, cls: str, ip: str,
           kv: Redis) -> ratelimit.Decision:
    """Leave the decision's headers for the edge middleware; a refusal is counted,
    reported (sampled) and raised as RateLimited."""
    request.scope.setdefault("state", {})["ratelimit_headers"] = decision.headers()
    if not decision.allowed:
        count_rate_limited(kv, cls)
        report_event("ratelimit.rejected", {"ip": ip, "class": cls, "path": request.url.path},
                     "low", sample_key=ip, kv=kv)
        raise ratelimit.RateLimited(decision)
    return decision


def _authenticate(request: Request, ip: str) -> Principal:
    auth_bucket = [_bucket("auth-ip", limit_subject(ip), "auth")]
    # The failed-authentication budget and the keys' generation in one round trip.
    decision = _limit(request, auth_bucket, cost=0, cls="auth", ip=ip,
                      along=lambda pipe: pipe.get(key_service.KEYS_GENERATION))
    generation = decision.others[0] if decision.others else None
    token = _bearer(request)
    known = key_service.key_cache.get(token, generation)
    if known is not None:
        return _principal(known)
    return _look_up(request, ip, token, generation, auth_bucket)


# A well-formed key no key has (key prefixes are random): its look-up finds nothing.
_NO_KEY = "secops_00000000_" + "0" * 43


def prepare_authentication() -> None:
    """Run the key look-up once on a key nothing has, so that the first requests (often
    many at once, none of them with its key remembered yet) find its statement compiled
    instead of each compiling it."""
    with closing(get_read_sessionmaker()()) as session:
        try:
            key_service.authenticate(session=session, token=_NO_KEY)
        except AuthenticationFailed:
            pass


def _principal(known: key_service.KnownKey) -> Principal:
    return Principal(known.id, known.name, known.role, frozenset(known.allowed_kinds))


def _look_up(request: Request, ip: str, token: str | None, generation: object,
             auth_bucket: list[ratelimit.Bucket]) -> Principal:
    """Authenticate ``token`` against the database (and remember it under ``generation``);
    a failure spends one unit of the auth budget and raises a security event."""
    # End the lookup's snapshot at once: an upload may take minutes, and an open reader
    # keeps SQLite from checkpointing its write-ahead log past it.
    with closing(get_read_sessionmaker()()) as session:
        try:
            record = key_service.authenticate(session=session, token=token)
        except AuthenticationFailed:
            match = key_service.KEY_PATTERN.match(token or "")
            details = {"ip": ip, "path": request.url.path,
                       "key_prefix": match.group(1) if match else None}
            report_event("auth.failure", details, "medium")
            ratelimit.check(get_redis(), auth_bucket, cost=1)
            raise
        key_service.key_cache.put(token or "", record, generation)
        return Principal(record.id, record.name, record.role,
                         frozenset(record.allowed_kinds or []))


def _authenticate_known(request: Request, ip: str, cls: str,
                        known: key_service.KnownKey) -> Principal:
    """The front door for a key this process remembers, in one Redis round trip: the
    auth budget's peek, the keys' generation, and (only when the budget allows and the
    generation is the one the key was remembered under) the key's use and the route
    class's count, as :func:`_authenticate` and the class limit would do in two. When
    the generation moved, the key is looked up again and the class is counted after."""
    subject = limit_subject(ip)
    auth_bucket = [_bucket("auth-ip", subject, "auth")]
    buckets = [_bucket(f"{cls}-ip", subject, cls), _bucket(f"{cls}-key", known.id, cls)]
    kv = get_redis()
    try:
        result = ratelimit.check_known(
            kv, auth_bucket, buckets, guard_key=key_service.KEYS_GENERATION,
            guard=cast(bytes | None, known.generation),
            use=(key_service.USE_COUNTS, key_service.USE_LAST, known.id, time.time()))
    except Unavailable:
        raise _limiter_down(request, ip) from None
    _admit(request, result.peek, "auth", ip, kv)
    if result.counted is not None:
        request.scope.setdefault("state", {})["authenticated"] = True
        _admit(request, result.counted, cls, ip, kv)
        return _principal(known)
    principal = _look_up(request, ip, _bearer(request), result.guard, auth_bucket)
    request.scope.setdefault("state", {})["authenticated"] = True
    buckets = [_bucket(f"{cls}-ip", subject, cls), _bucket(f"{cls}-key", principal.key_id, cls)]
    _limit(request, buckets, cost=1, cls=cls, ip=ip,
           along=lambda pipe: key_service.queue_use(pipe, principal.key_id))
    return principal


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates, rate-limits and checks ``permission``.

    The whole check runs in one worker-thread call with a read session of its own: each
    synchronous dependency is a hand-off between the event loop and the thread pool, and
    those hand-offs cost an authenticated request more CPU than its database and Redis
    work (measured: docs/performance.md, single-job submits).
    """
    check = _checker(permission)

    async def dependency(request: Request) -> Principal:
        return await in_thread(lambda: check(request))

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def require_in_route(permission: str) -> Callable[..., Awaitable[Callable[[], Principal]]]:
    """:func:`require` for a route that does its own work in one worker-thread call and
    whose parameters cannot fail validation: the dependency hands the route the check,
    and the route runs it first in that same call (one hand-off instead of two; the job
    poll is the hottest route). The route must call it before anything else."""
    check = _checker(permission)

    async def dependency(request: Request) -> Callable[[], Principal]:
        return lambda: check(request)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def _checker(permission: str) -> Callable[[Request], Principal]:
    """The check :func:`require` runs, as a blocking function of the request."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")
    cls = route_class(permission)

    def check(request: Request) -> Principal:
        ip = client_ip(request)
        known = key_service.key_cache.candidate(_bearer(request))
        if known is not None and isinstance(known.generation, bytes | None):
            principal = _authenticate_known(request, ip, cls, known)
            if not allowed(principal.role, permission):
                raise PermissionDenied("this key's role does not allow that")
            return principal
        principal = _authenticate(request, ip)
        request.scope.setdefault("state", {})["authenticated"] = True
        buckets = [_bucket(f"{cls}-ip", limit_subject(ip), cls),
                   _bucket(f"{cls}-key", principal.key_id, cls)]
        # The key's last use and count go in the same round trip: every request it
        # authenticated (answered, refused by its role or rate limited alike), counted in
        # Redis (see services.keys).
        _limit(request, buckets, cost=1, cls=cls, ip=ip,
               along=lambda pipe: key_service.queue_use(pipe, principal.key_id))
        if not allowed(principal.role, permission):
            raise PermissionDenied("this key's role does not allow that")
        return principal

    return check


def public() -> Callable[[], None]:
    """Declares a route open to everyone (health checks); the route walk test accepts it."""

    def dependency() -> None:
        return None

    dependency.permission = PUBLIC  # type: ignore[attr-defined]
    return dependency


ReadSession = Annotated[Session, Depends(db_read_session)]
WriteSession = Annotated[Session, Depends(db_session)]


class Submitted(Protocol):
    @property
    def submitted_by(self) -> str: ...


Record = TypeVar("Record", bound=Submitted)


def visible(record: Record, principal: Principal, what: str) -> Record:
    """``record`` if the principal may see it; otherwise NotFound ("<what> not found"),
    the same 404 as for a record that does not exist, so ids of others' work leak nothing."""
    if not principal.can_see(record.submitted_by):
        raise NotFound(f"{what} not found")
    return record
