"""Drill: the RabbitMQ broker is killed (SIGKILL) with jobs queued and running, and comes
back on the same port and data. Every job ends ``succeeded``, each run to completion
once: the quorum queues keep what was published, a running job's message comes back
unacknowledged and its redelivery finds the job already finished. Real API, worker,
beat and a private RabbitMQ node (the shared one is never killed); bounded in time."""

from __future__ import annotations

import httpx
import pytest

from tests.drills.jobs import (
    assert_every_ping_succeeded_once,
    pings_under_way,
    some_still_queued,
    wait_until_all_succeeded,
)
from tests.drills.rabbitmq import PrivateRabbitMQ
from tests.factories import auth, make_key
from tests.processes import start_api, start_beat, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]
JOBS = 24


def test_rabbitmq_sigkill_with_jobs_queued_and_running(sqlite_env, tmp_path):
    broker = PrivateRabbitMQ()
    procs = []
    try:
        broker.start()
        env = dict(sqlite_env, SECOPS_BROKER_URL=broker.url)
        key = make_key()
        worker_log = tmp_path / "worker.log"
        procs.append(start_worker(env, worker_log, concurrency=2))
        procs.append(start_beat(env, tmp_path / "beat.log"))
        api, url = start_api(env, tmp_path / "api.log")
        procs.append(api)
        with httpx.Client(base_url=url, headers=auth(key), timeout=30) as client:
            pings_under_way(client, JOBS, sleep=0.3)
        broker.kill()
        some_still_queued()
        broker.start()
        wait_until_all_succeeded(JOBS, 180)
    finally:
        for proc in procs:
            proc.stop()
        broker.destroy()
    assert_every_ping_succeeded_once(JOBS, worker_log.read_text())
