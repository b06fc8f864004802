"""Apply Alembic migrations programmatically (``secops db upgrade``, ``secops up``, tests)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

from secops.config import get_settings


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("migrations")))
    cfg.attributes["url"] = url or get_settings().resolved_database_url
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def current_heads() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
