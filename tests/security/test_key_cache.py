"""The API's memory of authenticated keys: polling costs no key lookup, and a
revocation, rotation or role change committed anywhere takes effect at the next request
(through the keys' generation in Redis), while a row changed behind the services' back
is seen once the memory's seconds are over."""

from __future__ import annotations

import time

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from secops.api.app import create_app
from secops.config import get_settings
from secops.db.models import ApiKey
from secops.db.session import get_engine, session_scope
from secops.services import keys as key_service
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem


@pytest.fixture
def cached(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_API_KEY_CACHE_SECONDS", "30")
    get_settings.cache_clear()
    key_service.key_cache.clear()
    yield TestClient(create_app(), raise_server_exceptions=False)
    key_service.key_cache.clear()


def _key_lookups(engine) -> list[int]:
    seen = [0]

    def count(conn, cursor, statement, *_):
        if "FROM api_keys" in statement:
            seen[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    return seen


def _key_id(name: str) -> str:
    with session_scope() as s:
        return s.query(ApiKey.id).filter(ApiKey.name == name).scalar()


def test_polling_looks_the_key_up_once(cached, sqlite_env):
    key = make_key(role="analyst", name="poller")
    lookups = _key_lookups(get_engine(sqlite_env["SECOPS_DATABASE_URL"], read_only=True))
    for _ in range(5):
        assert cached.get("/v1/jobs", headers=auth(key)).status_code == 200
    assert lookups[0] == 1


def test_revocation_and_role_change_take_effect_at_the_next_request(cached, sqlite_env):
    admin = make_key(name="admin")
    key = make_key(role="analyst", name="victim")
    assert cached.get("/v1/jobs", headers=auth(key)).status_code == 200  # remembered now
    generation = redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"]).get(
        key_service.KEYS_GENERATION)
    # a role change through the service, committed in another session (as another API
    # process would): this process's memory is left alone, the generation moves
    with session_scope() as s:
        key_service.update_key(session=s, key_id=_key_id("victim"), role="auditor")
    assert redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"]).get(
        key_service.KEYS_GENERATION) != generation
    assert_problem(cached.post("/v1/jobs", json={"kind": "system.ping", "params": {}},
                               headers=auth(key)), 403)  # an auditor may not submit
    # revocation through the API
    assert cached.post(f"/v1/keys/{_key_id('victim')}/revoke",
                       headers=auth(admin)).status_code == 200
    assert_problem(cached.get("/v1/jobs", headers=auth(key)), 401)


def test_a_row_changed_behind_the_services_back_counts_after_the_seconds(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_API_KEY_CACHE_SECONDS", "1")
    get_settings.cache_clear()
    key_service.key_cache.clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key(role="analyst", name="direct")
    assert client.get("/v1/jobs", headers=auth(key)).status_code == 200
    with session_scope() as s:  # no service, no generation: only the seconds bound it
        s.execute(update(ApiKey).where(ApiKey.name == "direct").values(revoked_at=ApiKey.created_at))
    assert client.get("/v1/jobs", headers=auth(key)).status_code == 200
    time.sleep(1.1)
    assert_problem(client.get("/v1/jobs", headers=auth(key)), 401)
    key_service.key_cache.clear()


def test_a_remembered_key_is_limited_and_counted_as_one_looked_up(sqlite_env, monkeypatch):
    """A remembered key goes through the front door in one Redis step: the same answers,
    rate-limit fields and use counts as a key looked up every time, up to and past the
    limit."""
    import re

    from secops.services.redisconn import get_redis
    from tests.factories import key_id_of

    seen = {}
    for seconds in ("0", "30"):
        monkeypatch.setenv("SECOPS_API_KEY_CACHE_SECONDS", seconds)
        monkeypatch.setenv("SECOPS_RATE_LIMIT_READ", "3/60")
        get_settings.cache_clear()
        key_service.key_cache.clear()
        get_redis().flushdb()
        client = TestClient(create_app(), raise_server_exceptions=False)
        key = make_key(role="analyst", name=f"limited-{seconds}")
        lookups = _key_lookups(get_engine(sqlite_env["SECOPS_DATABASE_URL"], read_only=True))
        answers = []
        for _ in range(5):
            resp = client.get("/v1/jobs", headers=auth(key))
            answers.append((resp.status_code, resp.headers["ratelimit-policy"],
                            re.sub(r";t=\d+", "", resp.headers["ratelimit"]),
                            resp.headers["cache-control"]))
        uses = int(get_redis().hget(key_service.USE_COUNTS, key_id_of(key)))
        seen[seconds] = (answers, uses, lookups[0])
    key_service.key_cache.clear()
    assert seen["30"][:2] == seen["0"][:2]
    assert [a[0] for a in seen["30"][0]] == [200, 200, 200, 429, 429]
    assert seen["30"][1] == 5
    assert (seen["0"][2], seen["30"][2]) == (5, 1)  # remembered: looked up once
