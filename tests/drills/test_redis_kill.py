"""Drill: the broker is killed (SIGKILL) with jobs queued and running, and comes back on
the same port and data. Every job ends in a final state, each run to completion once.
Real Redis, API, worker and beat processes; bounded in time."""

from __future__ import annotations

import os
import secrets
import signal

import httpx
import pytest
from sqlalchemy import func, select

from secops.db.models import Job
from secops.db.session import session_scope
from secops.embedded import EmbeddedRedis
from tests.factories import auth, make_key
from tests.processes import start_api, start_beat, start_worker, wait_for

pytestmark = pytest.mark.integration
JOBS = 24


def _counts() -> dict[str, int]:
    with session_scope() as s:
        return dict(s.execute(select(Job.status, func.count()).group_by(Job.status))
                    .tuples().all())


def test_redis_sigkill_with_jobs_queued_and_running(sqlite_env, tmp_path):
    password = secrets.token_hex(16)
    broker = EmbeddedRedis(tmp_path / "broker", password)
    broker.start()
    env = dict(sqlite_env, SECOPS_REDIS_URL=broker.url)
    key = make_key()
    procs = []
    try:
        procs.append(start_worker(env, tmp_path / "worker.log", concurrency=2))
        procs.append(start_beat(env, tmp_path / "beat.log"))
        api, url = start_api(env, tmp_path / "api.log")
        procs.append(api)
        jobs = [{"kind": "system.ping", "params": {"message": str(i), "sleep": 0.2}}
                for i in range(JOBS)]
        resp = httpx.post(f"{url}/v1/jobs/batch", json={"jobs": jobs}, headers=auth(key),
                          timeout=30)
        assert resp.status_code == 202, resp.text
        wait_for(lambda: _counts().get("succeeded", 0) >= 4, 60, "the first jobs to finish")
        # published more than a second ago: on disk (appendfsync everysec)
        assert broker.process is not None
        os.kill(broker.process.pid, signal.SIGKILL)
        broker.process.wait()
        during = _counts()
        assert during.get("queued", 0) > 0  # some were still waiting in the broker
        broker = EmbeddedRedis(tmp_path / "broker", password, port=broker.port)
        broker.start()
        wait_for(lambda: _counts().get("succeeded", 0) == JOBS, 120,
                 "every job to finish after the broker came back", interval=0.5)
    finally:
        for proc in procs:
            proc.stop()
        broker.stop()
    with session_scope() as s:
        rows = s.execute(select(Job.status, Job.result)).all()
    assert sorted(r.result["echo"]["message"] for r in rows) == sorted(str(i) for i in range(JOBS))
    assert {r.status for r in rows} == {"succeeded"}
