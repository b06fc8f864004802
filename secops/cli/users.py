"""``secops users``: console accounts, managed directly in the database (run on the server)."""

from __future__ import annotations

import json

import click

from secops.cli.keys import _ctx
from secops.config import get_settings
from secops.db.session import session_scope
from secops.errors import SecOpsError
from secops.services import audit
from secops.services import console_sessions as sessions
from secops.services import users as user_service
from secops.services.monitor import log_security_event
from secops.services.redisconn import get_redis


def _link(token: str) -> str:
    return f"{get_settings().console_origin_value()}/console/enrol/{token}"


def _end_sessions(user_id: str) -> int:
    try:
        return sessions.end_for_user(get_redis(), user_id)
    except SecOpsError:
        click.echo("note: Redis is unreachable; the user's sessions end at their timeout",
                   err=True)
        return 0


@click.group()
def users() -> None:
    """Create console users, disable or re-enable them, reset their factors."""


@users.command()
@click.option("--name", required=True, help="The user's sign-in name.")
@click.option("--role", type=click.Choice(user_service.ROLES), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print {id, name, role, link, expires_at}.")
def create(name: str, role: str, as_json: bool) -> None:
    """Create a user and print a one-time enrolment link (it expires)."""
    ctx = _ctx()
    with session_scope() as session:
        enrolment = user_service.create_user(session=session, name=name, role=role,
                                             created_by=ctx.actor)
        user = enrolment.user
        audit.record(session=session, ctx=ctx, action="users.create", target=f"user:{user.id}",
                     details={"name": user.name, "role": user.role})
        expires = user.enrol_expires_at.isoformat() if user.enrol_expires_at else None
        out = {"id": user.id, "name": user.name, "role": user.role,
               "link": _link(enrolment.token), "expires_at": expires}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"created {role} user {out['name']} ({out['id']}); the link works once, "
               f"until {expires}:")
    click.echo(out["link"])


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_users(as_json: bool) -> None:
    """List users and their factors (never a secret)."""
    with session_scope() as session:
        rows = []
        for u in user_service.list_users(session=session):
            rows.append({"id": u.id, "name": u.name, "role": u.role,
                         "enrolled": u.enrolled_at is not None,
                         "disabled": u.disabled_at is not None,
                         **user_service.factor_summary(session=session, user=u)})
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'NAME':24}  {'ROLE':8}  {'STATE':9}  FACTORS")
    for r in rows:
        state = "disabled" if r["disabled"] else "active" if r["enrolled"] else "invited"
        factors = ", ".join(f for f, on in (("totp", r["totp"]), ("passkeys", r["passkeys"]))
                            if on) or "password only"
        click.echo(f"{r['name']:24}  {r['role']:8}  {state:9}  {factors}")


def _set_disabled(user: str, disabled: bool) -> None:
    ctx = _ctx()
    action = "users.disable" if disabled else "users.enable"
    with session_scope() as session:
        record = user_service.set_disabled(session=session, user_id=user, disabled=disabled)
        audit.record(session=session, ctx=ctx, action=action, target=f"user:{record.id}",
                     details={"name": record.name})
        log_security_event(action, {"user": record.name, "actor": ctx.actor}, "medium",
                           session=session)
        user_id, name = record.id, record.name
    ended = _end_sessions(user_id) if disabled else 0
    click.echo(f"{'disabled' if disabled else 're-enabled'} {name}"
               + (f"; ended {ended} session(s)" if disabled else ""))


@users.command()
@click.argument("user")
def disable(user: str) -> None:
    """Disable a user (by id or name) and end their sessions."""
    _set_disabled(user, True)


@users.command()
@click.argument("user")
def enable(user: str) -> None:
    """Re-enable a disabled user."""
    _set_disabled(user, False)


@users.command("reset-factors")
@click.argument("user")
@click.option("--password", is_flag=True,
              help="Also clear the password and print a new enrolment link.")
def reset_factors(user: str, password: bool) -> None:
    """Remove a user's TOTP, passkeys and backup codes (recovery), ending their sessions."""
    ctx = _ctx()
    with session_scope() as session:
        record, token = user_service.reset_factors(session=session, user_id=user,
                                                   password=password)
        audit.record(session=session, ctx=ctx, action="users.reset_factors",
                     target=f"user:{record.id}", details={"name": record.name,
                                                          "password": password})
        log_security_event("users.reset_factors", {"user": record.name, "actor": ctx.actor},
                           "high", session=session)
        user_id, name = record.id, record.name
    ended = _end_sessions(user_id)
    click.echo(f"reset the second factors of {name}; ended {ended} session(s)")
    if token:
        click.echo("new enrolment link (works once):")
        click.echo(_link(token))


@users.command()
@click.argument("user")
def link(user: str) -> None:
    """A new enrolment link for a user who has not enrolled yet."""
    ctx = _ctx()
    with session_scope() as session:
        record, token = user_service.new_link(session=session, user_id=user)
        audit.record(session=session, ctx=ctx, action="users.link", target=f"user:{record.id}",
                     details={"name": record.name})
    click.echo(_link(token))
