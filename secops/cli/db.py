"""``secops db``: database migrations."""

from __future__ import annotations

import click

from secops.db.migrate import upgrade as run_upgrade


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target Alembic revision.")
def upgrade(revision: str) -> None:
    """Apply migrations to SECOPS_DATABASE_URL (default: the SQLite file in the data dir)."""
    try:
        run_upgrade(revision=revision)
    except Exception as exc:  # alembic/sqlalchemy errors: one line, no traceback
        raise click.ClickException(f"migration failed: {type(exc).__name__}") from None
    click.echo(f"database at revision {revision}")
