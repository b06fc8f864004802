"""The database beat scheduler in a real ``celery beat`` process, with a real worker."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from secops.api.app import create_app
from secops.db.models import Job, Schedule
from secops.db.session import session_scope
from tests.factories import auth, make_key
from tests.processes import start_beat, start_worker, wait_for

pytestmark = pytest.mark.integration


def jobs_of(schedule_id: str, status: str | None = None) -> int:
    with session_scope() as s:
        q = select(func.count()).select_from(Job).where(Job.submitted_by == f"schedule:{schedule_id}")
        if status:
            q = q.where(Job.status == status)
        return int(s.scalar(q) or 0)


def test_schedule_fires_jobs_and_changes_apply_without_restart(platform_env, tmp_path):
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key()
    worker = start_worker(platform_env, tmp_path / "w.log")
    beat = start_beat(platform_env, tmp_path / "beat.log")
    try:
        resp = client.post("/v1/schedules", headers=auth(key), json={
            "name": "ping-often", "kind": "system.ping", "params": {"message": "tick"},
            "interval_seconds": 1})
        assert resp.status_code == 201, resp.text
        sid = resp.json()["id"]
        wait_for(lambda: jobs_of(sid, "succeeded") >= 2, 30, "two scheduled runs succeeded")
        with session_scope() as s:
            job = s.scalars(select(Job).where(Job.submitted_by == f"schedule:{sid}")).first()
            assert job is not None and job.params["message"] == "tick"
        # disable it while beat runs: no new jobs after the change is picked up
        assert client.patch(f"/v1/schedules/{sid}", headers=auth(key),
                            json={"enabled": False}).status_code == 200
        time.sleep(2.5)  # beat re-reads every second in tests
        settled = jobs_of(sid)
        time.sleep(3)
        assert jobs_of(sid) == settled
        # change params and re-enable: the new params are used
        assert client.patch(f"/v1/schedules/{sid}", headers=auth(key),
                            json={"enabled": True, "params": {"message": "tock"}}).status_code == 200

        def has_tock() -> bool:
            with session_scope() as s:
                return any(j.params.get("message") == "tock" for j in s.scalars(
                    select(Job).where(Job.submitted_by == f"schedule:{sid}")).all())
        wait_for(has_tock, 20, "a run with the new params")
        beat.stop()
        with session_scope() as s:
            sched = s.get(Schedule, sid)
            assert sched is not None
            runs = sched.total_run_count
        assert runs == jobs_of(sid)  # every run made exactly one job
    finally:
        beat.stop()
        worker.stop()


def test_schedule_validation(platform_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key()
    bad = [
        {"name": "a", "kind": "system.ping"},  # neither cron nor interval
        {"name": "a", "kind": "system.ping", "cron": "* * * * *", "interval_seconds": 5},
        {"name": "a", "kind": "system.ping", "cron": "61 * * * *"},
        {"name": "a", "kind": "system.ping", "cron": "not cron"},
        {"name": "a", "kind": "no.kind", "interval_seconds": 5},
        {"name": "a", "kind": "system.ping", "params": {"sleep": "x"}, "interval_seconds": 5},
        {"name": "a", "kind": "system.ping", "interval_seconds": 0},
    ]
    for body in bad:
        resp = client.post("/v1/schedules", headers=auth(key), json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    ok = client.post("/v1/schedules", headers=auth(key),
                     json={"name": "nightly", "kind": "system.ping", "cron": "0 3 * * *"})
    assert ok.status_code == 201 and ok.json()["next_run_at"].endswith("03:00:00Z")
    dup = client.post("/v1/schedules", headers=auth(key),
                      json={"name": "nightly", "kind": "system.ping", "interval_seconds": 60})
    assert dup.status_code == 409
    sid = ok.json()["id"]
    switched = client.patch(f"/v1/schedules/{sid}", headers=auth(key), json={"interval_seconds": 60})
    assert switched.status_code == 200 and switched.json()["cron"] is None
    assert client.get(f"/v1/schedules/{sid}", headers=auth(key)).json()["interval_seconds"] == 60
    assert len(client.get("/v1/schedules", headers=auth(key)).json()) == 1
    analyst = make_key(role="analyst", name="an")
    assert client.delete(f"/v1/schedules/{sid}", headers=auth(analyst)).status_code == 403
    assert client.delete(f"/v1/schedules/{sid}", headers=auth(key)).status_code == 204
    assert client.get(f"/v1/schedules/{sid}", headers=auth(key)).status_code == 404
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Schedule)) == 0
