"""Shared fixtures: a real Redis server, real SQLite and PostgreSQL databases, settings.

Kept small: process helpers live in ``tests/processes.py``, factories in ``tests/factories.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from secops.config import get_settings
from secops.db.migrate import upgrade
from secops.db.session import dispose_engines
from secops.embedded import EmbeddedRedis
from secops.kinds import KINDS

PG_ADMIN_URL = os.environ.get("SECOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A private, real Redis server for the test session (nothing shared with other runs)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), secrets.token_hex(16))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, dropped at the end."""
    name = f"secops_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    dispose_engines()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _base_env(data_dir: Path, db_url: str, redis_url: str) -> dict[str, str]:
    return {
        "SECOPS_DATA_DIR": str(data_dir),
        "SECOPS_DATABASE_URL": db_url,
        "SECOPS_REDIS_URL": redis_url,
        "SECOPS_API_KEY_HMAC": "test-hmac-" + secrets.token_hex(16),
        "SECOPS_AUDIT_HMAC": "test-audit-" + secrets.token_hex(16),
        "SECOPS_STORAGE_KEY": "test-storage-" + secrets.token_hex(16),
        "SECOPS_JOB_TIME_LIMIT_DEFAULT": "8",
        # Short limits for every kind: the longest one sets the broker's visibility timeout,
        # which is how long a killed worker's job waits before it is delivered again.
        "SECOPS_JOB_TIME_LIMITS": json.dumps({name: 8 for name in KINDS} | {"system.ping": 6}),
        "SECOPS_JOB_LEASE_GRACE": "1",
        "SECOPS_VISIBILITY_MARGIN": "3",
        "SECOPS_REAPER_INTERVAL": "2",
        "SECOPS_BEAT_RELOAD_INTERVAL": "1",
        "SECOPS_LOG_LEVEL": "INFO",
        "SECOPS_CERTS_RENEW_CRON": "",  # no default certs.renew schedule unless a test asks
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def platform_env(request: pytest.FixtureRequest, tmp_path: Path, redis_server: EmbeddedRedis,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Settings for one test on SQLite or PostgreSQL, migrated, with a clean Redis db."""
    if request.param == "sqlite":
        yield from _environment(tmp_path, f"sqlite:///{tmp_path / 'secops.db'}", redis_server,
                                monkeypatch, reset=True)
    else:
        yield from _environment(tmp_path, request.getfixturevalue("pg_database"), redis_server,
                                monkeypatch, reset=True)


@pytest.fixture
def sqlite_env(tmp_path: Path, redis_server: EmbeddedRedis,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Like ``platform_env`` but SQLite only, for tests that need just one backend."""
    yield from _environment(tmp_path, f"sqlite:///{tmp_path / 'secops.db'}", redis_server,
                            monkeypatch)


def _environment(tmp_path: Path, db_url: str, redis_server: EmbeddedRedis,
                 monkeypatch: pytest.MonkeyPatch, reset: bool = False) -> Iterator[dict[str, str]]:
    env = _base_env(tmp_path, db_url, redis_server.url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    dispose_engines()
    upgrade(db_url)
    if reset:
        _reset(db_url)
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    yield env
    dispose_engines()
    get_settings.cache_clear()


def _reset(db_url: str) -> None:
    """Empty every table (the PostgreSQL database is shared by the session's tests)."""
    from secops.db.base import Base
    from secops.db.session import get_engine

    with get_engine(db_url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
