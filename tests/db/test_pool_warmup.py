"""Database connections are opened before the first request or job needs them: the API
opens its pool in its lifespan, a worker child connects as it starts, and a database
that cannot be reached is logged, never fatal."""

from __future__ import annotations

from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.db.session import dispose_engines, get_engine, warm_pool
from secops.embedded import free_port


def test_api_opens_its_pool_before_the_first_request(platform_env):
    dispose_engines()
    pools = {id(e.pool): e.pool for e in (get_engine(), get_engine(read_only=True))}
    assert [p.checkedin() for p in pools.values()] == [0] * len(pools)
    with TestClient(create_app()):
        assert [p.checkedin() for p in pools.values()] == [p.size() for p in pools.values()]
        assert all(p.size() == 5 for p in pools.values())


def test_worker_child_connects_as_it_starts(sqlite_env):
    from tasks.app import _connect_before_the_first_job

    dispose_engines()
    assert get_engine().pool.checkedin() == 0
    _connect_before_the_first_job()
    assert get_engine().pool.checkedin() == 1


def test_unreachable_database_is_not_fatal(sqlite_env, caplog):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none?connect_timeout=2"
    assert warm_pool(url) == 0
    assert "could not open the database pool" in caplog.text
