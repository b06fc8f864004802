"""Drill: the broker is killed (SIGKILL) with jobs queued and running, and comes back on
the same port and data. Every job ends in a final state, each run to completion once.
Real Redis, API, worker and beat processes; bounded in time."""

from __future__ import annotations

import os
import secrets
import signal

import httpx
import pytest

from secops.embedded import EmbeddedRedis
from tests.drills.jobs import (
    assert_every_ping_succeeded_once,
    pings_under_way,
    some_still_queued,
    wait_until_all_succeeded,
)
from tests.factories import auth, make_key
from tests.processes import start_api, start_beat, start_worker

pytestmark = pytest.mark.integration
JOBS = 24


def test_redis_sigkill_with_jobs_queued_and_running(sqlite_env, tmp_path):
    password = secrets.token_hex(16)
    broker = EmbeddedRedis(tmp_path / "broker", password)
    broker.start()
    env = dict(sqlite_env, SECOPS_REDIS_URL=broker.url)
    key = make_key()
    procs = []
    try:
        worker_log = tmp_path / "worker.log"
        procs.append(start_worker(env, worker_log, concurrency=2))
        procs.append(start_beat(env, tmp_path / "beat.log"))
        api, url = start_api(env, tmp_path / "api.log")
        procs.append(api)
        with httpx.Client(base_url=url, headers=auth(key), timeout=30) as client:
            pings_under_way(client, JOBS, sleep=0.2)
        # published more than a second ago: on disk (appendfsync everysec)
        assert broker.process is not None
        os.kill(broker.process.pid, signal.SIGKILL)
        broker.process.wait()
        some_still_queued()
        broker = EmbeddedRedis(tmp_path / "broker", password, port=broker.port)
        broker.start()
        wait_until_all_succeeded(JOBS, 120)
    finally:
        for proc in procs:
            proc.stop()
        broker.stop()
    assert_every_ping_succeeded_once(JOBS, worker_log.read_text())
