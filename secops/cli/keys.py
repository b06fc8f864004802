"""``secops keys``: API keys, managed directly in the database (run on the server)."""

from __future__ import annotations

import getpass
import json

import click

from secops.db.session import session_scope
from secops.errors import Unavailable
from secops.services import audit
from secops.services import keys as key_service
from secops.services.redisconn import get_redis


def _ctx() -> audit.AuditContext:
    """CLI changes are audited as the operating-system user who ran them."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container: still audit
        user = "unknown"
    return audit.AuditContext(actor=f"cli:{user}")


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke API keys."""


@keys.command()
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", type=click.Choice(key_service.ROLES), default="analyst", show_default=True)
@click.option("--kind", "kinds", multiple=True, help="Job kind a service key may submit (repeat).")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="Days until expiry (default SECOPS_API_KEY_DEFAULT_DAYS, 90).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, prefix, key} as JSON.")
def create(name: str, role: str, kinds: tuple[str, ...], expires_days: int | None,
           as_json: bool) -> None:
    """Create a key and print it once: only its digest is stored."""
    with session_scope() as session:
        issued = key_service.create_key(session=session, name=name, role=role, created_by="cli",
                                        allowed_kinds=list(kinds), expires_in_days=expires_days)
        record = issued.record
        audit.record(session=session, ctx=_ctx(), action="keys.create", target=f"key:{record.id}",
                     details={"name": record.name, "prefix": record.prefix, "role": record.role,
                              "allowed_kinds": record.allowed_kinds})
        out = {"id": record.id, "prefix": record.prefix, "key": issued.plaintext,
               "role": record.role,
               "expires_at": record.expires_at.isoformat() if record.expires_at else None}
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(f"created {role} key {out['id']} (prefix {out['prefix']}), "
                   f"expires {out['expires_at']}")
        click.echo("store it now, it is not shown again:")
        click.echo(out["key"])


@keys.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True)
def list_keys(include_revoked: bool, as_json: bool) -> None:
    """List keys (never their secrets), with their use up to now."""
    with session_scope() as session:
        try:
            with key_service.pending_use(get_redis()) as pending:
                key_service.apply_use(session=session, pending=pending)
                session.commit()
        except Unavailable:
            click.echo("note: Redis is unreachable; uses since the last flush are not "
                       "counted here", err=True)
        rows = [
            {"id": k.id, "name": k.name, "prefix": k.prefix, "role": k.role,
             "allowed_kinds": k.allowed_kinds, "created_at": k.created_at.isoformat(),
             "expires_at": k.expires_at.isoformat() if k.expires_at else None,
             "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
             "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
             "usage_count": k.usage_count}
            for k in key_service.list_keys(session=session, include_revoked=include_revoked)
        ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{'ID':36}  {'PREFIX':8}  {'ROLE':8}  {'USES':>6}  NAME")
    for r in rows:
        state = " (revoked)" if r["revoked_at"] else ""
        click.echo(f"{r['id']:36}  {r['prefix']:8}  {r['role']:8}  {r['usage_count']:>6}  "
                   f"{r['name']}{state}")


@keys.command()
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key by id or prefix; every API process refuses it from the next request."""
    with session_scope() as session:
        already = key_service.get_key(session=session, key_id=key_id).revoked_at is not None
        record = key_service.revoke_key(session=session, key_id=key_id)
        if not already:
            audit.record(session=session, ctx=_ctx(), action="keys.revoke",
                         target=f"key:{record.id}", details={"prefix": record.prefix})
        click.echo(f"revoked {record.id} ({record.prefix})")


@keys.command()
@click.argument("key_id")
@click.option("--grace-hours", type=click.IntRange(0, 720), default=None,
              help="How long the old secret keeps working "
              "(default SECOPS_API_KEY_ROTATION_GRACE_HOURS, 24).")
@click.option("--json", "as_json", is_flag=True, help="Print {id, prefix, key} as JSON.")
def rotate(key_id: str, grace_hours: int | None, as_json: bool) -> None:
    """Give a key a new secret (printed once); the old one works for the grace period."""
    with session_scope() as session:
        issued = key_service.rotate_key(session=session, key_id=key_id, grace_hours=grace_hours)
        record = issued.record
        audit.record(session=session, ctx=_ctx(), action="keys.rotate", target=f"key:{record.id}",
                     details={"prefix": record.prefix,
                              "previous_valid_until": record.previous_valid_until})
        valid_until = record.previous_valid_until
        out = {"id": record.id, "prefix": record.prefix, "key": issued.plaintext,
               "old_secret_valid_until": valid_until.isoformat() if valid_until else ""}
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(f"rotated {out['id']} (prefix {out['prefix']}); the old secret works until "
               f"{out['old_secret_valid_until']}")
    click.echo("store the new secret now, it is not shown again:")
    click.echo(out["key"])
