"""Celery configuration derived from the kind registry and settings."""

from __future__ import annotations

from secops.config import get_settings
from secops.kinds import HEAVY_QUEUES, KINDS, LIGHT_QUEUES, QUEUES
from tasks.routing import celery_config, soft_time_limit, time_limit, visibility_timeout


def test_reliability_settings(sqlite_env):
    settings = get_settings()
    conf = celery_config(settings)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"]
    assert conf["worker_soft_shutdown_timeout"] > 0
    assert conf["worker_prefetch_multiplier"] == 1
    # one visibility timeout for broker and result transport, above every hard limit + lease
    vt = conf["broker_transport_options"]["visibility_timeout"]
    assert conf["result_backend_transport_options"]["visibility_timeout"] == vt == (
        visibility_timeout(settings))
    for kind in KINDS:
        assert vt > time_limit(settings, kind) + settings.job_lease_grace
        limits = conf["task_annotations"][kind]
        assert limits["soft_time_limit"] < limits["time_limit"]


def test_routes_and_queues(sqlite_env):
    conf = celery_config(get_settings())
    assert [q.name for q in conf["task_queues"]] == list(QUEUES)
    for name, kind in KINDS.items():
        assert conf["task_routes"][name] == {"queue": kind.queue}
    assert set(HEAVY_QUEUES) | set(LIGHT_QUEUES) == set(QUEUES)
    assert not set(HEAVY_QUEUES) & set(LIGHT_QUEUES)


def test_soft_limit_leaves_room():
    assert soft_time_limit(6) == 5
    assert soft_time_limit(300) == 290
    assert soft_time_limit(1) == 1


def test_time_limit_override(sqlite_env, monkeypatch):
    monkeypatch.setenv("SECOPS_JOB_TIME_LIMITS", '{"system.ping": 42}')
    get_settings.cache_clear()
    assert time_limit(get_settings(), "system.ping") == 42


def test_broker_is_redis_unless_broker_url_is_set(sqlite_env, monkeypatch):
    conf = celery_config(get_settings())
    assert conf["broker_url"] == sqlite_env["SECOPS_REDIS_URL"]
    assert all(not q.queue_arguments for q in conf["task_queues"])
    url = "amqp://secops:" + "s3cret-broker-pass" + "@127.0.0.1:5672/secops"
    monkeypatch.setenv("SECOPS_BROKER_URL", url)
    monkeypatch.setenv("SECOPS_BROKER_DELIVERY_LIMIT", "7")
    get_settings.cache_clear()
    settings = get_settings()
    assert "s3cret-broker-pass" not in repr(settings) + str(settings.censored())
    conf = celery_config(settings)
    assert conf["broker_url"] == url
    for queue in conf["task_queues"]:
        assert queue.queue_arguments == {
            "x-queue-type": "quorum", "x-delivery-limit": 7,
            "x-dead-letter-exchange": "secops.dead", "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish"}
        assert (queue.exchange.name, queue.exchange.type) == ("secops", "topic")
        assert queue.routing_key == queue.name and queue.durable
