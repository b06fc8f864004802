"""``secops retention``: prune now, and legal holds (run on the server)."""

from __future__ import annotations

import getpass
import json

import click

from secops.config import get_settings
from secops.db.session import session_scope
from secops.services import audit
from secops.services import retention as retention_service
from secops.services.storage import get_store


def _ctx() -> audit.AuditContext:
    return audit.AuditContext(actor=f"cli:{getpass.getuser()}")


@click.group()
def retention() -> None:
    """Retention of jobs, events, scans, DLP scans and stored files; legal holds."""


@retention.command()
def prune() -> None:
    """Delete now what the retention settings allow; print the counts as JSON."""
    settings = get_settings()
    with session_scope() as session:
        result = retention_service.prune(session=session, settings=settings)
        audit.record(session=session, ctx=_ctx(), action="retention.prune", target="retention",
                     details=result.as_dict())
    retention_service.remove_files(store=get_store(settings), sha256s=result.files_to_remove)
    click.echo(json.dumps(result.as_dict(), sort_keys=True))


@retention.command()
@click.argument("sha256")
@click.option("--reason", required=True, help="Why (a case number...); kept in the audit log.")
def hold(sha256: str, reason: str) -> None:
    """Keep a stored file, its scans and DLP scans from retention until released."""
    with session_scope() as session:
        placed = retention_service.place_hold(session=session, sha256=sha256.lower(),
                                              reason=reason, ctx=_ctx())
        click.echo(placed.id)


@retention.command()
@click.argument("hold_id")
def release(hold_id: str) -> None:
    """Release a legal hold (retention applies again)."""
    with session_scope() as session:
        retention_service.release_hold(session=session, hold_id=hold_id, ctx=_ctx())
    click.echo(f"released {hold_id}")


@retention.command("holds")
def list_holds() -> None:
    """Active legal holds, one JSON object a line."""
    with session_scope() as session:
        for h in retention_service.active_holds(session=session):
            click.echo(json.dumps({"id": h.id, "sha256": h.sha256, "reason": h.reason,
                                   "created_by": h.created_by,
                                   "created_at": h.created_at.isoformat()}))
