"""Queued jobs survive Redis: the embedded server keeps an append-only file and never
evicts; the reaper publishes again jobs whose message was lost (real Redis, a real
worker)."""

from __future__ import annotations

import json
import os
import secrets
import signal
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import session_scope
from secops.embedded import EmbeddedRedis
from secops.services.jobs import create_job
from tests.processes import start_worker, wait_for

pytestmark = pytest.mark.integration


def _aof_holds(directory: Path, marker: bytes) -> bool:
    for path in directory.rglob("*.aof"):
        if marker in path.read_bytes():
            return True
    return False


def test_embedded_redis_keeps_queued_messages_through_a_kill(tmp_path):
    password = secrets.token_hex(16)
    server = EmbeddedRedis(tmp_path, password)
    server.start()
    try:
        client = redis.Redis(host="127.0.0.1", port=server.port, password=password)
        config = client.config_get("*")
        assert (config["appendonly"], config["appendfsync"], config["maxmemory-policy"]) == (
            "yes", "everysec", "noeviction")
        client.lpush("default", b"job-message-1")
        # fsync'd within a second (everysec); wait until it is on disk, then kill -9
        wait_for(lambda: _aof_holds(server.dir, b"job-message-1"), 10, "the AOF write")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
    finally:
        server.stop()
    again = EmbeddedRedis(tmp_path, password, port=server.port)  # same port, password, data
    again.start()
    try:
        client = redis.Redis(host="127.0.0.1", port=again.port, password=password)
        assert client.lrange("default", 0, -1) == [b"job-message-1"]
    finally:
        again.stop()


def test_reaper_publishes_again_a_job_whose_message_was_lost(sqlite_env, tmp_path, monkeypatch):
    monkeypatch.setenv("SECOPS_QUEUED_REPUBLISH_AFTER", "301")
    get_settings.cache_clear()
    from tasks.system import reap

    # The reaper has seen this broker already (it may have started a moment ago): what
    # follows is the age rule's work, not the search after a restart.
    assert reap() == {"requeued": 0, "failed": 0, "republished": 0}
    with session_scope() as s:
        lost = create_job(session=s, kind="system.ping", params={"message": "lost"},
                          submitted_by="key:test")
        fresh = create_job(session=s, kind="system.ping", params={}, submitted_by="key:test")
        s.flush()
        lost_id, fresh_id = lost.id, fresh.id
        # queued 400 s ago; its message went with the broker (nothing was ever published)
        s.execute(update(Job).where(Job.id == lost_id)
                  .values(updated_at=utcnow() - timedelta(seconds=400)))
    assert reap() == {"requeued": 0, "failed": 0, "republished": 1}
    assert reap() == {"requeued": 0, "failed": 0, "republished": 0}  # once per period
    worker = start_worker(dict(sqlite_env, SECOPS_QUEUED_REPUBLISH_AFTER="301"),
                          tmp_path / "worker.log")
    try:
        def status(job_id: str) -> str:
            with session_scope() as s:
                job = s.get(Job, job_id)
                assert job is not None
                return job.status

        wait_for(lambda: status(lost_id) == "succeeded", 60, "the lost job to run")
        with session_scope() as s:
            job = s.get(Job, lost_id)
            assert job is not None and job.result == {"echo": {"message": "lost", "sleep": 0.0,
                                                                "fail": False}}
            assert job.attempts == 1
        assert status(fresh_id) == "queued"  # never published, not yet old enough
    finally:
        worker.stop()


def test_a_restarted_broker_has_its_lost_messages_published_again(sqlite_env, tmp_path,
                                                                  monkeypatch):
    """The broker is killed with three jobs queued: one message still on its queue, one
    taken by a consumer and recorded as unacknowledged, one taken and not yet recorded
    (what a kill between the transport's two commands leaves). After the restart the
    reaper publishes exactly the third again, once; a broker that did not restart is
    not searched."""
    from tasks.app import app
    from tasks.dispatch import enqueue
    from tasks.system import reap
    from tests.processes import use_broker

    nothing = {"requeued": 0, "failed": 0, "republished": 0}

    password = secrets.token_hex(16)
    server = EmbeddedRedis(tmp_path / "broker", password)
    server.start()
    monkeypatch.setenv("SECOPS_REDIS_URL", server.url)
    use_broker()
    client = redis.Redis.from_url(server.url)
    consumer = None
    try:
        with session_scope() as s:
            rows = {name: create_job(session=s, kind="system.ping", params={"message": name},
                                     submitted_by="key:test")
                    for name in ("taken-and-lost", "unacknowledged", "on-the-queue")}
            s.flush()
            jobs = {name: row.id for name, row in rows.items()}
        for name in ("taken-and-lost", "unacknowledged", "on-the-queue"):
            enqueue([(jobs[name], "system.ping")])  # in this order: the oldest is taken first
        assert reap() == nothing  # first look: nothing was queued before the broker started
        assert client.rpop("default") is not None  # taken off the queue, never recorded
        consumer = app.connection_for_read()
        taken = consumer.default_channel.basic_get("default", no_ack=False)
        assert taken is not None and taken.headers["id"] == jobs["unacknowledged"]
        assert client.hlen("unacked") == 1
        assert reap() == nothing  # no restart: nothing published again
        wait_for(lambda: _aof_holds(server.dir, b"unacked"), 10, "the AOF write")
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        server = EmbeddedRedis(tmp_path / "broker", password, port=server.port)
        server.start()
        use_broker()
        assert reap() == nothing | {"republished": 1}
        assert reap() == nothing  # once per restart
        queued = [json.loads(raw)["headers"]["id"] for raw in client.lrange("default", 0, -1)]
        assert sorted(queued) == sorted([jobs["taken-and-lost"], jobs["on-the-queue"]])
    finally:
        if consumer is not None:
            consumer.release()
        server.stop()
        monkeypatch.setenv("SECOPS_REDIS_URL", sqlite_env["SECOPS_REDIS_URL"])
        use_broker()
