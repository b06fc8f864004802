"""Console sign-in: enrolment, password, second factor, sign-out, the account page.

Failures are generic ("the name or password is wrong"), with the same status whatever
the cause, and they cost the same time (unknown names verify a dummy hash). Every failed
password or second factor spends one unit of the client IP's ``auth`` budget and of the
account's ``rate_limit_login_account`` budget; a spent budget refuses further tries
before any check. Failures and successes are security events (``auth.failure``,
``auth.mfa_failure``, ``console.login``); the alert thresholds count them per IP and per
account.
"""

from __future__ import annotations

import hashlib

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from secops.api.console.web import Console, check_sizes, console_public, form_value, page
from secops.config import get_settings, parse_rate
from secops.db.console_models import User
from secops.errors import InvalidInput
from secops.services import audit, mfa, ratelimit
from secops.services import console_sessions as sessions
from secops.services import users as user_service
from secops.services.monitor import AlertRule, register_rule

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_FAILED = "Sign-in failed: the name or password is wrong, or the account cannot sign in."
MFA_FAILED = "That code was not accepted. Codes work once; wait for the next one."
TOO_MANY = "Too many failed attempts. Wait a few minutes and try again."
LIMITS = {"name": 100, "password": 1024, "password2": 1024, "csrf": 100, "code": 20,
          "backup": 40, "label": 100}


def register_console_rules() -> None:
    """Alert thresholds per account, next to the built-in ones per IP (same settings;
    registered again, with the current values, by every app built)."""
    fails, window = parse_rate(get_settings().alert_auth_failures)
    register_rule(AlertRule("console.failures.account",
                            frozenset({"auth.failure", "auth.mfa_failure"}), "account", fails,
                            window, "high", "repeated failed console sign-in for one account"))
    register_rule(AlertRule("console.mfa_failures.ip", frozenset({"auth.mfa_failure"}), "ip",
                            fails, window, "high", "repeated failed second factors from one IP"))


def _buckets(ip: str, account: str | None) -> list[ratelimit.Bucket]:
    """The client IP's failed-authentication budget, and the account's when one is named
    (a passkey-only sign-in names none: a shared bucket would let anyone lock it)."""
    settings = get_settings()
    limit, window = settings.rate_limit("auth")
    buckets = [ratelimit.Bucket("auth-ip", ip, limit, window)]
    if account is not None:
        acc_limit, acc_window = parse_rate(settings.rate_limit_login_account)
        account_key = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
        buckets.append(ratelimit.Bucket("login-account", account_key, acc_limit, acc_window))
    return buckets


def budget_left(console: Console, account: str | None) -> bool:
    return ratelimit.check(console.kv, _buckets(console.ip, account), cost=0).allowed


def spend(console: Console, account: str | None) -> None:
    ratelimit.check(console.kv, _buckets(console.ip, account), cost=1)


def _after_password(console: Console, user: User) -> Response:
    if user_service.has_second_factor(session=console.db, user=user):
        console.start(user, "mfa")
        return console.redirect("/console/login/mfa")
    if user_service.mfa_required(user.role):
        console.start(user, "setup")
        return console.redirect("/console/account/setup")
    return signed_in(console, user, "password")


def signed_in(console: Console, user: User, method: str) -> Response:
    if console.session is not None and console.session.user_id == user.id:
        console.promote("full")
    else:
        console.start(user, "full")
    from secops.db.base import utcnow

    user.last_login_at = utcnow()
    console.db.commit()
    console.event("console.login", {"ip": console.ip, "account": user.name, "method": method}, "low")
    return console.redirect("/console/")


@router.get("/login")
async def login_form(console: Console = Depends(console_public())) -> Response:
    if console.session is not None and console.session.signed_in:
        return console.redirect("/console/")
    console.ensure_session()
    return console.render("login.html", error=None)


@router.post("/login")
@page
async def login(request: Request, console: Console = Depends(console_public())) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    too_long = check_sizes(form, LIMITS)
    if too_long:
        return console.render("login.html", status=400, error=too_long)
    name, password = form_value(form, "name"), form_value(form, "password")
    if not budget_left(console, name):
        console.event("ratelimit.rejected", {"ip": console.ip, "class": "auth",
                                            "path": request.url.path}, "low",
                     sample_key=console.ip)
        return console.render("login.html", status=429, error=TOO_MANY)
    user = user_service.authenticate(session=console.db, name=name, password=password)
    if user is None:
        spend(console, name)
        console.event("auth.failure", {"ip": console.ip, "account": name[:100],
                                      "path": request.url.path}, "medium")
        return console.render("login.html", status=401, error=LOGIN_FAILED)
    console.db.commit()  # a rehashed password
    return _after_password(console, user)


@router.get("/login/mfa")
async def mfa_form(console: Console = Depends(console_public())) -> Response:
    sess = console.session
    if sess is None or sess.stage != "mfa" or console.user is None:
        return console.redirect("/console/login")
    factors = user_service.factor_summary(session=console.db, user=console.user)
    return console.render("mfa.html", error=None, factors=factors)


@router.post("/login/mfa")
@page
async def mfa_submit(request: Request, console: Console = Depends(console_public())) -> Response:
    sess, user = console.session, console.user
    if sess is None or sess.stage != "mfa" or user is None:
        return console.redirect("/console/login")
    form = await request.form(max_files=0, max_fields=10)
    factors = user_service.factor_summary(session=console.db, user=user)
    too_long = check_sizes(form, LIMITS)
    if too_long:
        return console.render("mfa.html", status=400, error=too_long, factors=factors)
    if not budget_left(console, user.name):
        return console.render("mfa.html", status=429, error=TOO_MANY, factors=factors)
    code, backup = form_value(form, "code").strip(), form_value(form, "backup").strip()
    if code and mfa.verify_totp(session=console.db, user=user, code=code):
        return signed_in(console, user, "totp")
    if backup and mfa.use_backup_code(session=console.db, user=user, code=backup):
        left = user_service.factor_summary(session=console.db, user=user)["backup_codes"]
        audit.record(session=console.db, ctx=console.audit(), action="users.backup_code_used",
                     target=f"user:{user.id}", details={"remaining": left})
        console.event("console.backup_code_used", {"ip": console.ip, "account": user.name,
                                                  "remaining": left}, "medium")
        return signed_in(console, user, "backup_code")
    console.db.rollback()
    spend(console, user.name)
    console.event("auth.mfa_failure", {"ip": console.ip, "account": user.name,
                                      "factor": "totp" if code else "backup_code"}, "medium")
    return console.render("mfa.html", status=401, error=MFA_FAILED, factors=factors)


@router.post("/logout")
async def logout(console: Console = Depends(console_public())) -> Response:
    if console.user is not None:
        console.event("console.logout", {"ip": console.ip, "account": console.user.name}, "low")
    console.end()
    return console.redirect("/console/login")


@router.get("/enrol/{token}")
@page
async def enrol_form(token: str, console: Console = Depends(console_public())) -> Response:
    user = user_service.user_for_link(session=console.db, token=token)
    console.ensure_session()
    return console.render("enrol.html", error=None, name=user.name, token=token)


@router.post("/enrol/{token}")
@page
async def enrol(token: str, request: Request,
                console: Console = Depends(console_public())) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    user = user_service.user_for_link(session=console.db, token=token)
    too_long = check_sizes(form, LIMITS)
    password = form_value(form, "password")
    error = too_long or (None if password == form_value(form, "password2")
                         else "the two passwords differ")
    if error is None:
        try:
            user = user_service.complete_enrolment(session=console.db, token=token,
                                                   password=password)
        except InvalidInput as exc:
            console.db.rollback()
            error = exc.message
    if error is not None:
        return console.render("enrol.html", status=400, error=error, name=user.name, token=token)
    audit.record(session=console.db, ctx=audit.AuditContext(
        actor=f"user:{user.id}", request_id=console.audit().request_id, client_ip=console.ip),
        action="users.enrol", target=f"user:{user.id}", details={"name": user.name})
    console.db.commit()
    console.event("console.enrolled", {"ip": console.ip, "account": user.name}, "low")
    if user_service.mfa_required(user.role):
        console.start(user, "setup")
        return console.redirect("/console/account/setup")
    return signed_in(console, user, "enrolment")


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG markup (no script, no style attribute)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff",
                                                     omitsize=False))


def end_other_sessions(console: Console, reason: str) -> None:
    """A factor changed: end the user's other sessions, and rotate this one."""
    assert console.user is not None and console.session_id is not None
    ended = sessions.end_for_user(console.kv, console.user.id, keep=console.session_id)
    console.promote(console.session.stage if console.session else "full")
    console.event("console.factor_changed", {"ip": console.ip, "account": console.user.name,
                                            "change": reason, "sessions_ended": ended}, "medium")


def show_backup_codes(console: Console, codes: list[str]) -> Response:
    return console.render("backup_codes.html", codes=codes)
