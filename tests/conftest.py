"""Shared fixtures: a real Redis server, real SQLite and PostgreSQL databases, settings.

Kept small: process helpers live in ``tests/processes.py``, factories in ``tests/factories.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
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
from tests.processes import use_broker

PG_ADMIN_URL = os.environ.get("SECOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
# The RabbitMQ server (scripts/services.sh starts it); each session gets its own vhost.
RABBITMQ_URL = os.environ.get("SECOPS_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")


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


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    """A private RabbitMQ virtual host for the session, deleted at the end: its amqp URL."""
    name = f"secops_test_{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True, capture_output=True)
    try:
        user = RABBITMQ_URL.split("://", 1)[1].split(":", 1)[0]
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", name, user, ".*", ".*", ".*"],
                       check=True, capture_output=True)
        yield f"{RABBITMQ_URL.rstrip('/')}/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True)


@pytest.fixture
def broker(request: pytest.FixtureRequest, platform_env: dict[str, str],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Celery broker of a test: Redis unless parametrised with ``rabbitmq`` (then
    SECOPS_BROKER_URL names the session's vhost, emptied first). It configures this
    process's Celery app and ``platform_env``, which the test's worker processes get."""
    name = getattr(request, "param", "redis")
    if name == "rabbitmq":
        url = request.getfixturevalue("rabbitmq_vhost")
        platform_env["SECOPS_BROKER_URL"] = url
        monkeypatch.setenv("SECOPS_BROKER_URL", url)
        use_broker()
        _empty_vhost()
        yield name
        platform_env.pop("SECOPS_BROKER_URL")
        monkeypatch.delenv("SECOPS_BROKER_URL")
        use_broker()
    else:
        yield name


def _empty_vhost() -> None:
    """Delete the vhost's job and dead-letter queues: each test starts with none."""
    from tasks.app import app
    from tasks.routing import dead_letter_queues, job_queues

    with app.connection_for_write() as conn:
        for queue in [*job_queues(get_settings()), *dead_letter_queues()]:
            queue.bind(conn.default_channel).delete()


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
        # Tests change key rows directly to stand for time passing; the API's memory of
        # keys has its own test (tests/security/test_key_cache.py).
        "SECOPS_API_KEY_CACHE_SECONDS": "0",
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
