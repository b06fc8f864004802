"""``secops audit``: verify, export and archive the audit log (run on the server)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import TextIO

import click

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.session import session_scope
from secops.services import audit as audit_service


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(as_json: bool) -> None:
    """Walk the hash chain; exit 1 and name the first broken link if it was tampered with."""
    with session_scope() as session:
        result = audit_service.verify_anchored(session=session,
                                               anchor_file=get_settings().audit_anchor_file)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    elif result.ok:
        click.echo(f"audit chain ok: {result.checked} entries checked, head {result.head_seq} "
                   f"{result.head_hash}")
    else:
        assert result.first_broken is not None
        click.echo(f"audit chain BROKEN at entry {result.first_broken.seq}: "
                   f"{result.first_broken.reason}", err=True)
    if not result.ok:
        sys.exit(1)


@audit.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--output", "-o", type=click.File("w"), default="-", help="File (default stdout).")
def export(fmt: str, output: TextIO) -> None:
    """Export every entry, oldest first, for an auditor."""
    with session_scope() as session:
        for chunk in audit_service.export(session=session, fmt=fmt):
            output.write(chunk)


@audit.command()
@click.option("--older-than-days", type=click.IntRange(0, 36500), default=None,
              help="Default SECOPS_AUDIT_RETENTION_DAYS (365).")
def archive(older_than_days: int | None) -> None:
    """Archive entries older than the retention period to a file, prune them, keep a checkpoint."""
    settings = get_settings()
    days = older_than_days if older_than_days is not None else settings.audit_retention_days
    with session_scope() as session:
        done = audit_service.archive_and_prune(session=session,
                                               before=utcnow() - timedelta(days=days),
                                               archive_dir=settings.data_dir / "audit-archive")
    if done is None:
        click.echo("nothing to archive")
    else:
        click.echo(f"archived {done.archived} entries through {done.through_seq} to {done.archive}")
