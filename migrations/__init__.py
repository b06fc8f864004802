"""Alembic migrations; applied by ``secops db upgrade`` and ``secops up``."""
