"""RabbitMQ: a message that kills its worker on every delivery is dead-lettered after the
delivery limit, and the reaper fails its job (real RabbitMQ vhost, a real worker)."""

from __future__ import annotations

import pytest

from secops.config import get_settings
from secops.db.models import Job
from secops.db.session import session_scope
from secops.services.jobs import create_job
from tests.factories import stored
from tests.processes import start_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]
SQLITE = pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)


def _queue_depth(name: str) -> int:
    from tasks.app import app

    with app.connection_for_write() as conn:
        return int(conn.default_channel.queue_declare(name, passive=True).message_count)


def _dead_letters(name: str) -> list:
    """Every message of a dead-letter queue, put back afterwards (the operator's view)."""
    from kombu import Queue

    from tasks.app import app

    with app.connection_for_write() as conn:
        queue = Queue(name, durable=True).bind(conn.default_channel)
        found = []
        while (message := queue.get(no_ack=False)) is not None:
            found.append((dict(message.headers), message.delivery_info["routing_key"]))
        conn.default_channel.basic_recover(requeue=True)
        return found


def _status(key: str) -> Job:
    return stored(Job, key)


@pytest.fixture
def delivery_limit(platform_env, monkeypatch):
    """A delivery limit of 2 (3 deliveries), set before the broker fixture declares queues."""
    platform_env["SECOPS_BROKER_DELIVERY_LIMIT"] = "2"
    monkeypatch.setenv("SECOPS_BROKER_DELIVERY_LIMIT", "2")
    get_settings.cache_clear()
    return 2


@SQLITE
@pytest.mark.parametrize("broker", ["rabbitmq"], indirect=True)
def test_poison_message_is_dead_lettered_and_its_job_failed(platform_env, delivery_limit, broker,
                                                            tmp_path):
    from tasks.app import app
    from tasks.routing import DEAD_JOBS_QUEUE, DEAD_QUEUE
    from tasks.system import reap

    limit = get_settings().broker_delivery_limit
    assert limit == delivery_limit
    with session_scope() as s:
        job = create_job(session=s, kind="system.ping", params={}, submitted_by="key:test")
        s.flush()
        job_id = job.id
    worker = start_worker(platform_env, tmp_path / "w.log", include=("tests.tasks.crashing",))
    try:
        app.send_task("tests.crash", args=[job_id], task_id=job_id, queue="default")
        wait_for(lambda: _queue_depth(DEAD_QUEUE) == 1, 60, "the message to be dead-lettered")
        # delivered limit + 1 times, each delivery killing the pool process that took it
        log = worker.output()
        assert log.count("exited with 'signal 9 (SIGKILL)'") == limit + 1, log[-3000:]
        assert _status(job_id).status == "queued"  # no job code ran: only the broker knows
        [(headers, routing_key)] = _dead_letters(DEAD_QUEUE)
        assert headers["id"] == job_id and routing_key == "default"
        assert headers["x-death"][0]["reason"] == "delivery_limit"
        assert headers["x-death"][0]["queue"] == "default"

        assert reap() == {"requeued": 0, "failed": 1, "republished": 0}
        failed = _status(job_id)
        assert failed.status == "failed" and failed.finished_at is not None
        assert failed.error == (f"its message was dead-lettered: returned to the broker more "
                                f"than {limit} times without finishing")
        assert _queue_depth(DEAD_JOBS_QUEUE) == 0  # read once by the reaper
        assert _queue_depth(DEAD_QUEUE) == 1  # the operator's copy stays
        assert reap() == {"requeued": 0, "failed": 0, "republished": 0}

        # the worker lived through it and still runs jobs
        with session_scope() as s:
            ok = create_job(session=s, kind="system.ping", params={"message": "after"},
                            submitted_by="key:test")
            s.flush()
            ok_id = ok.id
        from tasks.dispatch import enqueue

        enqueue([(ok_id, "system.ping")])
        wait_for(lambda: _status(ok_id).status == "succeeded", 30, "a job after the poison")
    finally:
        worker.stop()
