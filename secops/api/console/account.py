"""A user's own account: second-factor setup, backup codes, passkeys, sessions.

Adding or removing a factor ends the user's other sessions and rotates this one. A
user who must use MFA (``console_mfa_roles``) and has none is held in the ``setup``
stage, where only these pages answer, until a TOTP app or a passkey is confirmed.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from secops.api.console.auth import (
    LIMITS,
    budget_left,
    end_other_sessions,
    qr_svg,
    show_backup_codes,
    signed_in,
    spend,
)
from secops.api.console.web import Console, check_sizes, console_public, console_require, form_value, page
from secops.errors import InvalidInput
from secops.services import audit, mfa
from secops.services import console_sessions as sessions
from secops.services import passkeys as passkey_service
from secops.services import users as user_service

router = APIRouter(prefix="/console", include_in_schema=False)
SELF = "account:self"
MAX_JSON = 64 * 1024


def _account_page(console: Console, status: int = 200, **extra: object) -> Response:
    assert console.user is not None and console.session_id is not None
    user = console.user
    current = sessions.digest(console.session_id)
    context: dict[str, Any] = {
        "factors": user_service.factor_summary(session=console.db, user=user),
        "passkeys": passkey_service.list_passkeys(session=console.db, user=user),
        "sessions": sessions.list_for_user(console.kv, user.id),
        "current": current,
        "pending_qr": None, "pending_uri": None, "error": None, "notice": None,
        "mfa_required": user_service.mfa_required(user.role),
    }
    pending = mfa.pending_uri(user)
    if pending:
        context["pending_qr"], context["pending_uri"] = qr_svg(pending), pending
    context.update(extra)
    template = "setup.html" if console.session and console.session.stage == "setup" else "account.html"
    return console.render(template, status=status, **context)


@router.get("/account")
async def account(console: Console = Depends(console_require(SELF))) -> Response:
    return _account_page(console)


@router.get("/account/setup")
async def setup(console: Console = Depends(console_require(SELF, stages=("setup", "full")))) -> Response:
    return _account_page(console)


@router.post("/account/totp/begin")
@page
async def totp_begin(console: Console = Depends(console_require(SELF, stages=("setup", "full")))) -> Response:
    assert console.user is not None
    if console.user.totp_confirmed:
        return _account_page(console, status=409, error="an authenticator app is set up already; "
                             "remove it first")
    mfa.begin_totp(session=console.db, user=console.user)
    console.db.commit()
    return _account_page(console)


def _factor_added(console: Console, factor: str) -> Response:
    """After a new factor: audit, end other sessions, backup codes on first factor."""
    assert console.user is not None
    user = console.user
    audit.record(session=console.db, ctx=console.audit(), action=f"users.{factor}_added",
                 target=f"user:{user.id}", details={"name": user.name})
    codes = None
    if user_service.factor_summary(session=console.db, user=user)["backup_codes"] == 0:
        codes = mfa.new_backup_codes(session=console.db, user=user)
    console.db.commit()
    end_other_sessions(console, f"{factor}_added")
    if console.session is not None and console.session.stage == "setup":
        console.promote("full")
    if codes:
        return show_backup_codes(console, codes)
    return console.redirect("/console/account")


@router.post("/account/totp/confirm")
@page
async def totp_confirm(request: Request, console: Console = Depends(
        console_require(SELF, stages=("setup", "full")))) -> Response:
    assert console.user is not None
    form = await request.form(max_files=0, max_fields=10)
    too_long = check_sizes(form, LIMITS)
    if too_long:
        return _account_page(console, status=400, error=too_long)
    try:
        mfa.confirm_totp(session=console.db, user=console.user, code=form_value(form, "code"))
    except InvalidInput as exc:
        console.db.rollback()
        console.event("auth.mfa_failure", {"ip": console.ip, "account": console.user.name,
                                          "factor": "totp_setup"}, "low")
        return _account_page(console, status=400, error=exc.message)
    return _factor_added(console, "totp")


@router.post("/account/totp/remove")
@page
async def totp_remove(console: Console = Depends(console_require(SELF))) -> Response:
    user = console.user
    assert user is not None
    summary = user_service.factor_summary(session=console.db, user=user)
    if user_service.mfa_required(user.role) and not summary["passkeys"]:
        return _account_page(console, status=409, error="your role requires a second factor: "
                             "add a passkey before removing the authenticator app")
    user.totp_secret, user.totp_confirmed, user.totp_last_step = None, False, None
    audit.record(session=console.db, ctx=console.audit(), action="users.totp_removed",
                 target=f"user:{user.id}", details={"name": user.name})
    console.db.commit()
    end_other_sessions(console, "totp_removed")
    return console.redirect("/console/account")


@router.post("/account/backup-codes")
@page
async def backup_codes(console: Console = Depends(console_require(SELF))) -> Response:
    user = console.user
    assert user is not None
    if not user_service.has_second_factor(session=console.db, user=user):
        return _account_page(console, status=409, error="set up an authenticator app or a "
                             "passkey first")
    codes = mfa.new_backup_codes(session=console.db, user=user)
    audit.record(session=console.db, ctx=console.audit(), action="users.backup_codes_renewed",
                 target=f"user:{user.id}", details={"name": user.name})
    console.db.commit()
    end_other_sessions(console, "backup_codes_renewed")
    return show_backup_codes(console, codes)


@router.post("/account/sessions/end")
@page
async def end_session(request: Request, console: Console = Depends(console_require(SELF))) -> Response:
    assert console.user is not None and console.session_id is not None
    form = await request.form(max_files=0, max_fields=5)
    target = form_value(form, "session")[:64]
    if target == sessions.digest(console.session_id):
        console.end()
        return console.redirect("/console/login")
    sessions.end_one(console.kv, console.user.id, target)
    return console.redirect("/console/account")


@router.post("/account/sessions/end-all")
@page
async def end_all(console: Console = Depends(console_require(SELF))) -> Response:
    assert console.user is not None
    ended = sessions.end_for_user(console.kv, console.user.id)
    console.event("console.signed_out_everywhere", {"ip": console.ip, "account": console.user.name,
                                                   "sessions_ended": ended}, "low")
    console.end()
    return console.redirect("/console/login")


async def _json(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_JSON:
        raise InvalidInput("the request is too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidInput("the request is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request is not valid JSON")
    return data


def _json_error(console: Console, status: int, message: str) -> Response:
    return console.finish(Response(json.dumps({"error": message}), status_code=status,
                                   media_type="application/json"))


@router.post("/account/passkeys/options")
@page
async def passkey_register_options(console: Console = Depends(
        console_require(SELF, stages=("setup", "full")))) -> Response:
    assert console.user is not None and console.session is not None
    options, challenge = passkey_service.registration_options(session=console.db, user=console.user)
    console.session.data["register_challenge"] = challenge
    console.save()
    return console.finish(Response(options, media_type="application/json"))


@router.post("/account/passkeys/register")
async def passkey_register(request: Request, console: Console = Depends(
        console_require(SELF, stages=("setup", "full")))) -> Response:
    assert console.user is not None and console.session is not None
    challenge = console.session.data.pop("register_challenge", None)
    console.save()  # a challenge is good for one attempt
    try:
        data = await _json(request)
        if not challenge:
            raise InvalidInput("start the registration again")
        passkey = passkey_service.register(session=console.db, user=console.user,
                                           credential=data.get("credential") or {},
                                           challenge=challenge, name=str(data.get("name", ""))[:100])
    except InvalidInput as exc:
        console.db.rollback()
        return _json_error(console, 400, exc.message)
    audit.record(session=console.db, ctx=console.audit(), action="users.passkey_added",
                 target=f"user:{console.user.id}", details={"passkey": passkey.id,
                                                             "name": passkey.name})
    codes = None
    if user_service.factor_summary(session=console.db, user=console.user)["backup_codes"] == 0:
        codes = mfa.new_backup_codes(session=console.db, user=console.user)
        console.session.data["fresh_codes"] = codes
    console.db.commit()
    end_other_sessions(console, "passkey_added")
    if console.session.stage == "setup":
        console.promote("full")
    console.save()
    target = "/console/account/new-codes" if codes else "/console/account"
    return console.finish(Response(json.dumps({"ok": True, "next": target}),
                                   media_type="application/json"))


@router.get("/account/new-codes")
async def new_codes(console: Console = Depends(console_require(SELF))) -> Response:
    assert console.session is not None
    codes = console.session.data.pop("fresh_codes", None)
    console.save()
    if not codes:
        return console.redirect("/console/account")
    return show_backup_codes(console, codes)


@router.post("/account/passkeys/remove")
@page
async def passkey_remove(request: Request, console: Console = Depends(console_require(SELF))) -> Response:
    user = console.user
    assert user is not None
    form = await request.form(max_files=0, max_fields=5)
    summary = user_service.factor_summary(session=console.db, user=user)
    if (user_service.mfa_required(user.role) and not summary["totp"]
            and int(summary["passkeys"]) <= 1):
        return _account_page(console, status=409, error="your role requires a second factor: "
                             "keep one passkey or set up an authenticator app first")
    passkey = passkey_service.remove(session=console.db, user=user,
                                     passkey_id=form_value(form, "passkey")[:36])
    audit.record(session=console.db, ctx=console.audit(), action="users.passkey_removed",
                 target=f"user:{user.id}", details={"passkey": passkey.id})
    console.db.commit()
    end_other_sessions(console, "passkey_removed")
    return console.redirect("/console/account")


# Passkey sign-in: a passkey alone (discoverable), or as the second factor after a password.
@router.post("/passkeys/login/options")
async def passkey_login_options(console: Console = Depends(console_public())) -> Response:
    sess = console.session
    if sess is None or sess.stage not in ("anon", "mfa"):
        return _json_error(console, 400, "reload the sign-in page and try again")
    user = console.user if sess.stage == "mfa" else None
    options, challenge = passkey_service.authentication_options(session=console.db, user=user)
    sess.data["login_challenge"] = challenge
    console.save()
    return console.finish(Response(options, media_type="application/json"))


@router.post("/passkeys/login/verify")
async def passkey_login(request: Request, console: Console = Depends(console_public())) -> Response:
    sess = console.session
    if sess is None or sess.stage not in ("anon", "mfa"):
        return _json_error(console, 400, "reload the sign-in page and try again")
    challenge = sess.data.pop("login_challenge", None)
    console.save()
    account = console.user.name if console.user else None
    if not budget_left(console, account):
        return _json_error(console, 429, "Too many failed attempts. Wait a few minutes.")
    try:
        data = await _json(request)
        if not challenge:
            raise InvalidInput("reload the sign-in page and try again")
        user, passkey = passkey_service.authenticate(
            session=console.db, credential=data.get("credential") or {}, challenge=challenge,
            user=console.user if sess.stage == "mfa" else None)
    except InvalidInput as exc:
        console.db.rollback()
        spend(console, account)
        console.event("auth.mfa_failure" if console.user else "auth.failure",
                     {"ip": console.ip, "account": account, "factor": "passkey"}, "medium")
        return _json_error(console, 401, exc.message)
    console.db.commit()
    signed_in(console, user, "passkey")  # its redirect is not sent: the script navigates
    return console.finish(Response(json.dumps({"ok": True, "next": "/console/"}),
                                   media_type="application/json"))

