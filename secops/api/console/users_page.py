"""The console's users page (admins): invite, disable, re-enable, reset second factors.

The same service calls, audit entries and security events as ``secops users``; the
enrolment link of an invitation or a password reset is shown once on the page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from secops.api.console.web import Console, check_sizes, console_require, form_value, page
from secops.config import get_settings
from secops.services import audit
from secops.services import console_sessions as sessions
from secops.services import users as user_service

router = APIRouter(prefix="/console", include_in_schema=False)
MANAGE = "users:manage"


def _link(token: str) -> str:
    return f"{get_settings().console_origin_value()}/console/enrol/{token}"


def _users_page(console: Console, status: int = 200, **extra: Any) -> Response:
    rows = [(u, user_service.factor_summary(session=console.db, user=u))
            for u in user_service.list_users(session=console.db)]
    context: dict[str, Any] = {"rows": rows, "roles": user_service.ROLES, "link": None,
                               "link_for": None, "error": None}
    context.update(extra)
    return console.render("users.html", status=status, **context)


@router.get("/users")
async def users(console: Console = Depends(console_require(MANAGE))) -> Response:
    return _users_page(console)


@router.post("/users")
@page
async def invite(request: Request, console: Console = Depends(console_require(MANAGE))) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    too_long = check_sizes(form, {"name": 100, "role": 20})
    if too_long:
        return _users_page(console, status=400, error=too_long)
    enrolment = user_service.create_user(session=console.db, name=form_value(form, "name"),
                                         role=form_value(form, "role"), created_by=console.actor)
    user = enrolment.user
    audit.record(session=console.db, ctx=console.audit(), action="users.create",
                 target=f"user:{user.id}", details={"name": user.name, "role": user.role})
    console.db.commit()
    return _users_page(console, link=_link(enrolment.token), link_for=user.name)


@router.post("/users/{user_id}/{action}")
@page
async def user_action(user_id: str, action: str,
                      console: Console = Depends(console_require(MANAGE))) -> Response:
    assert console.user is not None
    target = user_service.get_user(session=console.db, user_id=user_id[:36])
    if target.id == console.user.id and action in ("disable", "reset-factors"):
        return _users_page(console, status=409, error="you cannot do that to your own account "
                           "here; ask another admin or use the CLI")
    token = None
    if action in ("disable", "enable"):
        user_service.set_disabled(session=console.db, user_id=target.id,
                                  disabled=action == "disable")
        name = f"users.{action}"
        severity = "medium"
    elif action in ("reset-factors", "reset-password"):
        _, token = user_service.reset_factors(session=console.db, user_id=target.id,
                                              password=action == "reset-password")
        name, severity = "users.reset_factors", "high"
    else:
        return _users_page(console, status=400, error="unknown action")
    audit.record(session=console.db, ctx=console.audit(), action=name, target=f"user:{target.id}",
                 details={"name": target.name, "password": action == "reset-password"})
    target_id, target_name = target.id, target.name
    console.event(name, {"user": target_name, "actor": console.actor, "ip": console.ip}, severity)
    if action != "enable":
        sessions.end_for_user(console.kv, target_id)
    if token:
        return _users_page(console, link=_link(token), link_for=target_name)
    return console.redirect("/console/users")
