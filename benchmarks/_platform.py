"""What the platform benchmarks share: a database of their own and a migrated schema with
an admin key, set up the way the platform's own processes will read it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = os.environ.get("SECOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def new_database(kind: str, tmp: Path, prefix: str) -> tuple[str, str | None]:
    """A SQLite file under ``tmp``, or a new PostgreSQL database: its URL, and the
    PostgreSQL database's name for :func:`drop_database` (``None`` for SQLite)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / (prefix + '.db')}", None
    name = f"secops_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(name: str | None) -> None:
    """Drop a database of :func:`new_database` (this process's connections first)."""
    if name is None:
        return
    from secops.db.session import dispose_engines

    dispose_engines()
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def migrate_with_key(env: dict[str, str], key_name: str) -> str:
    """Put ``env`` into this process's environment, migrate its database and create an
    admin API key; returns the key. The engines are disposed of afterwards, so the
    benchmark's children are the only ones holding connections."""
    os.environ.update(env)
    from secops.config import get_settings
    from secops.db.migrate import upgrade
    from secops.db.session import dispose_engines, session_scope
    from secops.services.keys import create_key

    get_settings.cache_clear()
    dispose_engines()
    upgrade(env["SECOPS_DATABASE_URL"])
    with session_scope() as s:
        key = create_key(session=s, name=key_name, role="admin", created_by=key_name).plaintext
    dispose_engines()
    return key
