"""Alembic environment: the URL comes from the caller's config or from SecOps settings."""

from __future__ import annotations

from alembic import context

from secops.db import (
    console_models,  # noqa: F401  (the console's tables)
    models,  # noqa: F401  (registers every table on the metadata)
)
from secops.db.base import Base
from secops.db.session import get_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str | None:
    return config.attributes.get("url") or config.get_main_option("sqlalchemy.url") or None


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = get_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
