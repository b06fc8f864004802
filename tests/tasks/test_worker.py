"""Real Celery worker processes against real Redis and SQLite/PostgreSQL; the submit and
killed-worker paths also against RabbitMQ (quorum queues, in a vhost of the session)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from secops.api.app import create_app
from secops.db.base import utcnow
from secops.db.models import Job
from secops.db.session import session_scope
from secops.services.jobs import create_job
from tests.factories import auth, make_key, stored
from tests.processes import start_worker, wait_for

pytestmark = pytest.mark.integration


def job_row(key: str) -> Job:
    return stored(Job, key)


def wait_status(job_id: str, status: str, timeout: float = 30) -> Job:
    wait_for(lambda: job_row(job_id).status == status, timeout, f"job {job_id} {status}", 0.1)
    return job_row(job_id)


BROKERS = pytest.mark.parametrize(
    "broker", ["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)], indirect=True)


@pytest.fixture
def api(platform_env, broker):
    return TestClient(create_app(), raise_server_exceptions=False), make_key()


def submit(api, params: dict | None = None, kind: str = "system.ping") -> str:
    client, key = api
    resp = client.post("/v1/jobs", json={"kind": kind, "params": params or {}}, headers=auth(key))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


@BROKERS
def test_job_reaches_succeeded_and_api_returns_result(api, platform_env, tmp_path):
    worker = start_worker(platform_env, tmp_path / "w.log")
    try:
        job_id = submit(api, {"message": "hello"})
        job = wait_status(job_id, "succeeded")
        assert job.result == {"echo": {"message": "hello", "sleep": 0.0, "fail": False}}
        assert job.attempts == 1 and job.started_at and job.finished_at
        client, key = api
        body = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        assert body["status"] == "succeeded" and body["result"]["echo"]["message"] == "hello"
    finally:
        worker.stop()


def test_failing_job_is_failed_with_sanitised_error(api, platform_env, tmp_path):
    worker = start_worker(platform_env, tmp_path / "w.log")
    try:
        job = wait_status(submit(api, {"fail": True}), "failed")
        assert job.error == "internal error (RuntimeError)"  # the type, never the text
        assert job.attempts == 1  # a permanent error is not retried
        assert "Traceback" not in (job.error or "")
    finally:
        worker.stop()


def test_redelivered_finished_job_does_nothing(api, platform_env, tmp_path):
    from tasks.dispatch import enqueue

    worker = start_worker(platform_env, tmp_path / "w.log")
    try:
        job_id = submit(api, {"message": "once"})
        first = wait_status(job_id, "succeeded")
        enqueue([(job_id, "system.ping")])  # the same message again, as a redelivery would
        wait_for(lambda: "job delivery skipped" in worker.output(), 20, "second delivery handled")
        again = job_row(job_id)
        assert again.attempts == 1 and again.finished_at == first.finished_at
    finally:
        worker.stop()


@BROKERS
def test_worker_killed_mid_job_and_job_completes_on_new_worker(api, platform_env, tmp_path):
    first = start_worker(platform_env, tmp_path / "w1.log", name="w1")
    job_id = submit(api, {"sleep": 3, "message": "survive"})
    wait_status(job_id, "running", 20)
    first.kill()  # SIGKILL the whole worker: no ack, no chance to clean up
    first.stop()
    assert job_row(job_id).status == "running"
    second = start_worker(platform_env, tmp_path / "w2.log", name="w2")
    try:
        job = wait_status(job_id, "succeeded", 60)
        assert job.attempts == 2
        assert job.result == {"echo": {"message": "survive", "sleep": 3.0, "fail": False}}
    finally:
        second.stop()


def test_soft_time_limit_is_not_swallowed_by_a_handler(api, platform_env, tmp_path):
    """A handler catching Exception (as olevba or pypdf do on bad input) cannot swallow
    the soft time limit: the job fails with it then, not at the hard kill."""
    from tasks.app import app

    with session_scope() as s:
        job = create_job(session=s, kind="system.ping", params={}, submitted_by="key:test")
        s.flush()
        job_id = job.id
    worker = start_worker(platform_env, tmp_path / "w.log", include=("tests.tasks.swallowing",))
    try:
        app.send_task("tests.swallow", args=[job_id], task_id=job_id, queue="default")
        job = wait_status(job_id, "failed", 30)
        assert job.error == "time limit exceeded" and job.result is None
        assert (job.finished_at - job.started_at).total_seconds() < 10  # soft 1 s, hard 15 s
        assert "Hard time limit" not in worker.output()
    finally:
        worker.stop()


def test_reaper_requeues_stuck_job(api, platform_env, tmp_path):
    """A job left ``running`` with an expired lease (its worker vanished) is re-queued."""
    from tasks.system import reap

    job_id = submit(api, {"message": "stuck"})
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            status="running", attempts=1, started_at=utcnow() - timedelta(minutes=5),
            lease_expires_at=utcnow() - timedelta(seconds=1)))
    import redis

    redis.Redis.from_url(platform_env["SECOPS_REDIS_URL"]).delete("default")  # message lost
    assert reap.run() == {"requeued": 1, "failed": 0, "republished": 0}
    assert job_row(job_id).status == "queued"
    worker = start_worker(platform_env, tmp_path / "w.log")
    try:
        assert wait_status(job_id, "succeeded").attempts == 2
    finally:
        worker.stop()


def test_reaper_fails_poison_job(api, platform_env):
    from tasks.system import reap

    job_id = submit(api)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(
            status="running", attempts=3, lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert reap.run() == {"requeued": 0, "failed": 1, "republished": 0}
    job = job_row(job_id)
    assert job.status == "failed" and "poison" in (job.error or "")


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc: the prefork pool of a worker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def test_cancel_running_job_stops_it(api, platform_env, tmp_path):
    """Cancelling a running job terminates the pool process running it (a pool process
    outlives the tasks it finishes, so its end shows the task was stopped), the job stays
    cancelled, and the worker goes on taking jobs."""
    worker = start_worker(platform_env, tmp_path / "w.log", concurrency=1)
    try:
        client, key = api
        job_id = submit(api, {"sleep": 5})
        wait_status(job_id, "running", 20)
        (running_in,) = _children(worker.p.pid)
        resp = client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
        assert resp.status_code == 200
        wait_for(lambda: running_in not in _children(worker.p.pid), 20, "the task's process to end")
        follow_up = submit(api, {"message": "after"})
        wait_status(follow_up, "succeeded")
        job = job_row(job_id)
        assert job.status == "cancelled" and job.result is None
        assert f"Terminating {job_id}" in worker.output()
    finally:
        worker.stop()


def test_scan_only_worker_leaves_default_jobs_queued(platform_env, tmp_path, monkeypatch):
    """A worker consuming only ``scan`` runs a scan job submitted after a ``default`` job,
    and leaves the ``default`` job and its message alone; a ``default`` worker then runs it."""
    import redis

    from secops.config import get_settings

    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "a.txt").write_text("hello")
    env = dict(platform_env, SECOPS_SCAN_ALLOWED_DIRS=json.dumps([str(watched)]))
    monkeypatch.setenv("SECOPS_SCAN_ALLOWED_DIRS", env["SECOPS_SCAN_ALLOWED_DIRS"])
    get_settings.cache_clear()
    api = TestClient(create_app(), raise_server_exceptions=False), make_key()
    scan_worker = start_worker(env, tmp_path / "scan.log", name="scan", queues="scan")
    try:
        ping = submit(api, {"message": "default queue"})
        scan = submit(api, {"path": str(watched)}, kind="scan.directory")
        wait_status(scan, "succeeded")
        assert job_row(ping).status == "queued"
        assert redis.Redis.from_url(env["SECOPS_REDIS_URL"]).llen("default") == 1
        assert f"[{ping}]" not in scan_worker.output()
    finally:
        scan_worker.stop()
    default_worker = start_worker(env, tmp_path / "default.log", name="default", queues="default")
    try:
        wait_status(ping, "succeeded")
    finally:
        default_worker.stop()
