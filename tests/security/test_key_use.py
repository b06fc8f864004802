"""API key use: counted in Redis per request, folded into the table by beat and by reads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient

from secops.api.app import create_app
from secops.cli import cli
from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import ApiKey
from secops.db.session import session_scope
from secops.services import keys as key_service
from secops.services.redisconn import get_redis
from tests.factories import auth, make_key
from tests.processes import start_beat, start_worker, wait_for


def row(prefix: str) -> ApiKey:
    with session_scope() as s:
        return key_service.get_key(session=s, key_id=prefix)


def prefix_of(key: str) -> str:
    match = key_service.KEY_PATTERN.match(key)
    assert match is not None
    return match.group(1)


def note_use(kv: redis.Redis, key_id: str, when: datetime | None = None) -> None:
    """One authenticated request's use, as the API counts it (without the rate limit)."""
    pipe = kv.pipeline(transaction=False)
    key_service.queue_use(pipe, key_id, when)
    pipe.execute()


def fold() -> int:
    with session_scope() as s, key_service.pending_use(get_redis()) as pending:
        changed = key_service.apply_use(session=s, pending=pending)
        s.commit()
    return changed


def test_requests_count_in_redis_not_in_the_table_and_reads_fold_them(client):
    admin, analyst = make_key(), make_key("analyst", name="reader")
    for _ in range(3):
        assert client.get("/v1/jobs", headers=auth(analyst)).status_code == 200
    # refused by its role: still a use of the key
    assert client.get("/v1/keys", headers=auth(analyst)).status_code == 403
    stored = row(prefix_of(analyst))
    assert stored.usage_count == 0 and stored.last_used_at is None  # authentication wrote nothing
    assert int(get_redis().hget(key_service.USE_COUNTS, stored.id) or 0) == 4
    got = client.get(f"/v1/keys/{prefix_of(analyst)}", headers=auth(admin)).json()
    assert got["usage_count"] == 4
    assert utcnow() - timedelta(minutes=1) < stored_last(got) <= utcnow()
    assert row(prefix_of(analyst)).usage_count == 4  # now in the table, and out of Redis
    assert get_redis().hget(key_service.USE_COUNTS, stored.id) is None
    listed = {k["prefix"]: k for k in client.get("/v1/keys", headers=auth(admin)).json()}
    assert listed[prefix_of(analyst)]["usage_count"] == 4  # not counted twice
    assert listed[prefix_of(admin)]["usage_count"] == 2  # its two reads, this one included


def stored_last(got: dict) -> object:
    return datetime.fromisoformat(got["last_used_at"].replace("Z", "+00:00"))


def test_a_failed_fold_puts_the_uses_back(platform_env):
    key = make_key()
    kv = get_redis()
    record = row(prefix_of(key))
    note_use(kv, record.id)
    note_use(kv, record.id)
    with pytest.raises(RuntimeError), session_scope() as s, \
            key_service.pending_use(kv) as pending:
        assert pending.counts == {record.id: 2}
        key_service.apply_use(session=s, pending=pending)
        note_use(kv, record.id)  # counted meanwhile: kept for the next fold
        raise RuntimeError("the commit failed")
    assert row(prefix_of(key)).usage_count == 0  # rolled back
    assert int(kv.hget(key_service.USE_COUNTS, record.id) or 0) == 3
    assert fold() == 1
    assert row(prefix_of(key)).usage_count == 3
    assert fold() == 0  # nothing left to add


def test_last_use_never_goes_back_and_deleted_keys_are_dropped(platform_env):
    key = make_key()
    kv = get_redis()
    record = row(prefix_of(key))
    late, early = utcnow(), utcnow() - timedelta(hours=2)
    note_use(kv, record.id, late)
    note_use(kv, record.id, early)  # a slower API process, reporting late
    note_use(kv, "no-such-key", late)
    assert fold() == 1
    assert row(prefix_of(key)).last_used_at == late
    note_use(kv, record.id, early)
    fold()
    again = row(prefix_of(key))
    assert again.last_used_at == late and again.usage_count == 3


def test_cli_list_folds_and_says_when_redis_is_unreachable(sqlite_env, monkeypatch):
    key = make_key()
    note_use(get_redis(), row(prefix_of(key)).id)
    out = CliRunner().invoke(cli, ["keys", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["usage_count"] == 1
    note_use(get_redis(), row(prefix_of(key)).id)
    monkeypatch.setenv("SECOPS_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    get_settings.cache_clear()
    out = CliRunner().invoke(cli, ["keys", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["usage_count"] == 1
    assert "Redis is unreachable" in out.stderr


def test_requests_are_refused_when_use_cannot_be_counted(sqlite_env, monkeypatch):
    key = make_key()
    client = TestClient(create_app(), raise_server_exceptions=False)
    monkeypatch.setattr(key_service, "USE_COUNTS", "secops:keyuse:wrong-type")
    redis.Redis.from_url(sqlite_env["SECOPS_REDIS_URL"]).set("secops:keyuse:wrong-type", "x")
    resp = client.get("/v1/jobs", headers=auth(key))
    assert resp.status_code == 503, resp.text
    assert "unavailable" in resp.json()["detail"]


@pytest.mark.integration
def test_beat_folds_key_use_into_the_table(platform_env, tmp_path):
    env = {**platform_env, "SECOPS_KEY_USE_FLUSH_INTERVAL": "1"}
    key = make_key()
    record = row(prefix_of(key))
    for _ in range(5):
        note_use(get_redis(), record.id)
    worker = start_worker(env, tmp_path / "w.log", queues="default,system")
    beat = start_beat(env, tmp_path / "beat.log")
    try:
        wait_for(lambda: row(prefix_of(key)).usage_count == 5, 30, "beat folded the uses")
        assert get_redis().hget(key_service.USE_COUNTS, record.id) is None
    finally:
        beat.stop()
        worker.stop()
