"""Drill: the PostgreSQL server crashes (immediate stop) with jobs queued and running, stays
down a few seconds, and comes back on the same port. While it is down the API answers
503 problems (never a 500); afterwards every job ends ``succeeded``, each run to
completion once, and new work is accepted again. Real API, worker and a private
PostgreSQL server (the shared one is never restarted); bounded in time."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import select

from secops.config import get_settings
from secops.db.migrate import upgrade
from secops.db.models import Job
from secops.db.session import dispose_engines, session_scope
from tests.drills.jobs import completions, counts, pings_under_way
from tests.drills.postgres import PrivatePostgres
from tests.factories import auth, make_key
from tests.processes import start_api, start_beat, start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
JOBS = 20


@pytest.fixture
def private_pg(sqlite_env, monkeypatch):
    server = PrivatePostgres()
    try:
        server.start()
        monkeypatch.setenv("SECOPS_DATABASE_URL", server.url)
        get_settings.cache_clear()
        dispose_engines()
        upgrade(server.url)
        yield server, dict(sqlite_env, SECOPS_DATABASE_URL=server.url)
    finally:
        dispose_engines()
        server.destroy()


def test_postgres_restart_during_a_run(private_pg, tmp_path):
    server, env = private_pg
    key = make_key()
    procs = [start_beat(env, tmp_path / "beat.log")]  # the reaper: jobs whose outcome was lost
    try:
        worker = start_worker(env, tmp_path / "worker.log", concurrency=2)
        procs.append(worker)
        api, url = start_api(env, tmp_path / "api.log")
        procs.append(api)
        with httpx.Client(base_url=url, headers=auth(key), timeout=30) as client:
            pings_under_way(client, JOBS, sleep=0.3)
            server.stop("immediate")
            dispose_engines()
            down_since = time.monotonic()
            answers = []
            while time.monotonic() - down_since < 3:
                answers.append(client.post("/v1/jobs", json={"kind": "system.ping",
                                                             "params": {"message": "down"}}))
                answers.append(client.get("/v1/jobs"))
                time.sleep(0.2)
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.headers["retry-after"] == "5"
            server.start()
            wait_for(lambda: client.get("/v1/jobs").status_code == 200, 30, "the API to recover")
            after = client.post("/v1/jobs", json={"kind": "system.ping",
                                                  "params": {"message": "after"}})
            assert after.status_code == 202, after.text
            wait_for(lambda: counts().get("succeeded", 0) == JOBS + 1, 120,
                     "every job to finish after the restart", interval=0.5)
    finally:
        for proc in reversed(procs):
            proc.stop()
    access = api.output()  # uvicorn's access log: the 503s are there, no request got a 500
    assert '" 503 Service Unavailable' in access and '" 500' not in access
    with session_scope() as s:
        rows = s.execute(select(Job.id, Job.status, Job.result)).all()
    assert sorted(r.result["echo"]["message"] for r in rows) == sorted(
        [str(i) for i in range(JOBS)] + ["after"])  # none lost, none of the 503s recorded
    assert {r.status for r in rows} == {"succeeded"}
    ran = completions(worker.output())
    assert set(ran) == {r.id for r in rows}
    assert max(ran.values()) == 1, ran.most_common(3)
