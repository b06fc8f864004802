"""The console's request plumbing: sessions from the cookie, CSRF, CSP nonces, pages.

Cookie: ``__Host-secops_session`` (``Secure``, ``HttpOnly``, ``SameSite=Strict``,
``Path=/``, no ``Domain``). The one exception is plain HTTP on a loopback address when
``SECOPS_CONSOLE_INSECURE_LOOPBACK`` is set (development without TLS): the cookie is
then ``secops_session`` without ``Secure`` (a ``__Host-`` cookie must be ``Secure``).

CSRF: every ``POST`` must carry the session's synchronizer token (form field ``csrf``
or header ``X-CSRF-Token``), and its ``Origin`` (when sent) must be the console's own
origin and its ``Sec-Fetch-Site`` (when sent) ``same-origin``. Console routes change
nothing on ``GET``.

Every page gets a fresh CSP nonce; the policy allows scripts and styles only from the
app itself (and the nonce), no inline code, no framing, forms posting only to itself.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from secops.api.deps import _bucket, _limit, db_read_session, db_session
from secops.api.permissions import ALL_PERMISSIONS, PUBLIC, allowed, route_class
from secops.api.security import audit_context, client_ip, report_event
from secops.config import get_settings
from secops.db.console_models import User
from secops.errors import InvalidInput, SecOpsError
from secops.services import console_sessions as sessions
from secops.services.audit import AuditContext
from secops.services.redisconn import get_redis

HERE = Path(__file__).resolve().parent
SECURE_COOKIE = "__Host-secops_session"
LOOPBACK_COOKIE = "secops_session"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_FIELD = 2000


@functools.lru_cache(maxsize=1)
def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]), auto_reload=False)
    return env


class ConsoleHalt(Exception):  # noqa: N818 - carries a response, not an error
    """Stop a console request with this response (redirect to sign-in, refusal page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("console response")
        self.response = response


def csp(nonce: str) -> str:
    return (f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
            "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")


def _loopback_http(request: Request) -> bool:
    if not get_settings().console_insecure_loopback or request.url.scheme != "http":
        return False
    host = (request.url.hostname or "").strip("[]")
    peer = request.client.host if request.client else ""
    try:
        peer_ok = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        peer_ok = False
    return peer_ok and (host == "localhost" or _is_loopback_ip(host))


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_name(request: Request) -> str:
    return LOOPBACK_COOKIE if _loopback_http(request) else SECURE_COOKIE


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(cookie_name(request), session_id, path="/", httponly=True,
                        samesite="strict", secure=not _loopback_http(request))


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(cookie_name(request), path="/", httponly=True, samesite="strict",
                           secure=not _loopback_http(request))


@dataclass
class Console:
    """One console request: its session (None before any), id, user and Redis client."""

    request: Request
    kv: redis.Redis
    session_id: str | None
    session: sessions.ConsoleSession | None
    db: Session
    user: User | None = None
    new_session_id: str | None = None  # set when the id changed: the cookie is re-sent
    ended: bool = False  # signed out: the cookie is cleared

    @property
    def ip(self) -> str:
        return client_ip(self.request)

    @property
    def actor(self) -> str:
        return f"user:{self.user.id}" if self.user else "anonymous"

    def event(self, kind: str, details: dict[str, Any], severity: str = "medium", *,
              sample_key: str | None = None) -> None:
        """A security event. The request's transaction is committed first (on SQLite it
        holds the write lock the event's own session needs): callers roll back what a
        refused request must not keep before they report it."""
        if self.db.in_transaction():
            self.db.commit()
        report_event(kind, details, severity, sample_key=sample_key, kv=self.kv)

    def audit(self) -> AuditContext:
        return audit_context(self.request, self.actor)

    def ensure_session(self) -> sessions.ConsoleSession:
        """The session, creating an anonymous one (for a sign-in form's CSRF token)."""
        if self.session is None:
            self.session = sessions.new(ip=self.ip,
                                        user_agent=self.request.headers.get("user-agent", ""))
            self.session_id = sessions.create(self.kv, self.session)
            self.new_session_id = self.session_id
        return self.session

    def start(self, user: User, stage: str) -> None:
        """Sign-in progress for ``user``: a new session id (fixation is useless), new CSRF."""
        sess = sessions.new(ip=self.ip, user_agent=self.request.headers.get("user-agent", ""))
        sess.user_id, sess.role, sess.name, sess.stage = user.id, user.role, user.name, stage
        self.session_id = sessions.rotate(self.kv, self.session_id, sess)
        self.session, self.user, self.new_session_id = sess, user, self.session_id

    def promote(self, stage: str) -> None:
        """A privilege change within the sign-in: same user, new id and CSRF token."""
        assert self.session is not None
        self.session.stage = stage
        self.session_id = sessions.rotate(self.kv, self.session_id, self.session)
        self.new_session_id = self.session_id

    def save(self) -> None:
        if self.session is not None and self.session_id is not None:
            sessions.save(self.kv, self.session_id, self.session)

    def end(self) -> None:
        if self.session_id:
            sessions.delete(self.kv, self.session_id)
        self.session, self.session_id, self.ended = None, None, True

    def finish(self, response: Response) -> Response:
        """The response, with the cookie set or cleared; the request's transaction ends
        here (routes commit what they change), so no write lock outlives the route."""
        if self.db.in_transaction():
            self.db.rollback()
        if self.ended:
            clear_cookie(self.request, response)
        elif self.new_session_id:
            set_cookie(self.request, response, self.new_session_id)
        return response

    def can(self, permission: str) -> bool:
        """Whether the signed-in user's role holds ``permission``."""
        sess = self.session
        return (self.user is not None and sess is not None and sess.signed_in
                and allowed(self.user.role, permission))

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(18)
        sess = self.session
        html = templates().get_template(template).render(
            nonce=nonce, csrf=sess.csrf if sess else "", user=self.user,
            stage=sess.stage if sess else None, can=self.can, **context)
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Security-Policy"] = csp(nonce)
        # no-referrer would make browsers send "Origin: null" with the page's own forms
        response.headers["Referrer-Policy"] = "same-origin"
        return self.finish(response)

    def redirect(self, url: str) -> Response:
        return self.finish(RedirectResponse(url, status_code=303))


def _origin_ok(request: Request) -> bool:
    expected = get_settings().console_origin_value()
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != expected:
        own = f"{request.url.scheme}://{request.url.netloc}"
        if not (_loopback_http(request) and origin == own):
            return False
    site = request.headers.get("sec-fetch-site")
    return site is None or site == "same-origin"


def refuse(console: Console, status: int, message: str) -> ConsoleHalt:
    return ConsoleHalt(console.render("error.html", status=status, message=message))


async def check_csrf(console: Console) -> None:
    request = console.request
    if request.method not in STATE_CHANGING:
        return
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_files=0, max_fields=50)
        value = form.get("csrf")
        token = value if isinstance(value, str) else None
    sess = console.session
    if (not _origin_ok(request) or sess is None or token is None
            or not hmac.compare_digest(token.encode(), sess.csrf.encode())):
        console.event("console.csrf_refused", {"ip": console.ip, "path": request.url.path,
                                               "origin": request.headers.get("origin", "")[:200]})
        raise refuse(console, 403, "This request was refused: it did not come from a page of "
                     "this console (cross-site request check failed). Nothing was changed.")


def _load(request: Request, db: Session) -> Console:
    kv = get_redis()
    session_id = request.cookies.get(cookie_name(request))
    sess = sessions.load(kv, session_id)
    console = Console(request, kv, session_id if sess else None, sess, db)
    if sess is not None and sess.user_id:
        user = db.get(User, sess.user_id)
        if user is None or user.disabled_at is not None or user.password_hash is None:
            console.end()
        else:
            console.user = user
    db.rollback()  # release the snapshot (and SQLite's write lock) until the route needs it
    return console


def _session_for(request: Request, writer: Session, reader: Session) -> Session:
    """A read-only session for GET (no write lock on SQLite), the writer otherwise."""
    return reader if request.method in ("GET", "HEAD") else writer


def console_public() -> Callable[..., Any]:
    """A console route open before sign-in (sign-in, enrolment): counted against the
    client IP's ``read`` budget; POSTs still need CSRF."""

    async def dependency(request: Request, writer: Session = Depends(db_session),
                         reader: Session = Depends(db_read_session)) -> Console:
        console = _load(request, _session_for(request, writer, reader))
        _limit(request, [_bucket("read-ip", console.ip, "read")], cost=1, cls="read",
               ip=console.ip)
        await check_csrf(console)
        return console

    dependency.permission = PUBLIC  # type: ignore[attr-defined]
    return dependency


def console_require(permission: str, *, stages: tuple[str, ...] = ("full",)) -> Callable[..., Any]:
    """A signed-in console route: session stage, CSRF, rate limit, then the role check
    against the API's permission table."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission}")
    cls = route_class(permission)

    async def dependency(request: Request, writer: Session = Depends(db_session),
                         reader: Session = Depends(db_read_session)) -> Console:
        console = _load(request, _session_for(request, writer, reader))
        if request.method in STATE_CHANGING and not _origin_ok(request):
            await check_csrf(console)  # a cross-site post is refused as such, signed in or not
        sess = console.session
        if console.user is None or sess is None or sess.stage not in stages:
            if request.method in STATE_CHANGING:
                raise refuse(console, 401, "Your session has ended. Sign in again; nothing "
                             "was changed.")
            target = "/console/login"
            if sess is not None and sess.stage == "setup":
                target = "/console/account/setup"
            elif sess is not None and sess.stage == "mfa":
                target = "/console/login/mfa"
            raise ConsoleHalt(console.redirect(target))
        await check_csrf(console)
        ip = console.ip
        _limit(request, [_bucket(f"{cls}-ip", ip, cls), _bucket(f"{cls}-user", console.user.id, cls)],
               cost=1, cls=cls, ip=ip)
        request.scope.setdefault("state", {})["authenticated"] = True
        if not allowed(console.user.role, permission):
            raise refuse(console, 403, "Your role does not allow this page or action.")
        return console

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def form_value(form: Any, name: str) -> str:
    """A text field of a submitted form ("" when absent); :func:`check_sizes` refuses
    oversized fields first."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def check_sizes(form: Any, limits: dict[str, int]) -> str | None:
    """The message for the first field over its limit (or unknown and over MAX_FIELD)."""
    for name, value in form.multi_items():
        if not isinstance(value, str):
            return "file uploads are not accepted here"
        if len(value) > limits.get(name, MAX_FIELD):
            return f"the field '{name[:40]}' is too long (at most {limits.get(name, MAX_FIELD)} characters)"
    return None


def page(func: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Turn SecOpsErrors of a console route into a page with the message."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await func(*args, **kwargs)
        except SecOpsError as exc:
            console = next((v for v in kwargs.values() if isinstance(v, Console)), None)
            if console is None:
                raise
            console.db.rollback()
            from secops.api.problems import status_for

            status = 400 if isinstance(exc, InvalidInput) else status_for(exc)
            return console.render("error.html", status=status, message=exc.message)

    return wrapper
