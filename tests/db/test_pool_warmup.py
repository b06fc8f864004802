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


def test_api_compiles_the_key_look_up_and_the_job_read_before_the_first_request(platform_env):
    """The first requests after a start (often many at once) find the key look-up and
    the job read compiled: every statement of the first poll is a compiled-cache hit."""
    from typing import Any

    from sqlalchemy import event
    from sqlalchemy.engine.default import CACHE_HIT

    from secops.db.session import session_scope
    from secops.services.jobs import create_job
    from tests.factories import auth, make_key

    key = make_key()
    with session_scope() as s:
        job = create_job(session=s, kind="system.ping", params={}, submitted_by="tests")
        s.flush()
        job_id = job.id
    dispose_engines()
    engine = get_engine(read_only=True)
    seen: list[tuple[str, bool]] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
                   _many: bool) -> None:
        seen.append((statement.split()[0].upper(), context.cache_hit is CACHE_HIT))

    with TestClient(create_app()) as client:
        event.listen(engine, "after_cursor_execute", on_execute)
        resp = client.get(f"/v1/jobs/{job_id}", headers=auth(key))
    event.remove(engine, "after_cursor_execute", on_execute)
    assert resp.status_code == 200 and resp.json()["id"] == job_id
    assert [word for word, _ in seen] == ["SELECT", "SELECT"]  # the key, then the job
    assert all(hit for _, hit in seen), seen
