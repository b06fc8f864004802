"""The one module that owns queues, routes, time limits and the built-in beat entries.

Everything is derived from the job-kind registry in ``secops.kinds``: a kind's task is
named after the kind and runs on its family's queue, so slow scans never delay
certificate renewal. The broker's visibility timeout is set above the longest hard time
limit, or Redis would hand a still-running job to a second worker.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from secops.config import Settings
from secops.kinds import KINDS, QUEUES

REAP_TASK = "system.reap"
AUDIT_ARCHIVE_TASK = "audit.archive"
KEY_USE_TASK = "system.flush_key_use"
RETENTION_TASK = "system.retention"
PRIVACY_DEADLINES_TASK = "privacy.deadlines"
RETRY_BACKOFF_MAX = 300  # seconds: long delays come from schedules, never from countdowns
# RabbitMQ: jobs go through one topic exchange (Celery's native delayed delivery, which
# carries retry countdowns on quorum queues, needs topic or fanout); a message returned
# more than SECOPS_BROKER_DELIVERY_LIMIT times goes to the fanout DEAD_EXCHANGE, which
# copies it into DEAD_QUEUE (kept for the operator) and DEAD_JOBS_QUEUE (the reaper
# reads it and fails the job).
JOB_EXCHANGE = "secops"
DEAD_EXCHANGE = "secops.dead"
DEAD_QUEUE = "secops.dead"
DEAD_JOBS_QUEUE = "secops.dead.jobs"


def time_limit(settings: Settings, kind: str) -> int:
    spec = KINDS.get(kind)
    return settings.time_limit(kind, spec.time_limit if spec else None)


def soft_time_limit(hard: int) -> int:
    """A little before the hard limit, so the handler can fail the job cleanly."""
    return max(1, hard - max(1, min(10, hard // 10)))


def visibility_timeout(settings: Settings) -> int:
    longest = max([time_limit(settings, k) for k in KINDS] + [settings.job_time_limit_default])
    return longest + settings.visibility_margin


def job_queues(settings: Settings) -> list[Queue]:
    """The family queues: plain on Redis; on RabbitMQ durable quorum queues with a
    delivery limit and a dead-letter exchange."""
    if not settings.broker_is_amqp():
        return [Queue(q, routing_key=q) for q in QUEUES]
    exchange = Exchange(JOB_EXCHANGE, type="topic", durable=True)
    arguments = {
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.broker_delivery_limit,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # at-least-once dead-lettering requires it
    }
    return [Queue(q, exchange=exchange, routing_key=q, durable=True, queue_arguments=arguments)
            for q in QUEUES]


def dead_letter_queues() -> list[Queue]:
    """Where RabbitMQ puts messages past the delivery limit (classic queues: the operator
    may read them again and again without a delivery limit of their own applying)."""
    exchange = Exchange(DEAD_EXCHANGE, type="fanout", durable=True)
    return [Queue(DEAD_QUEUE, exchange=exchange, durable=True),
            Queue(DEAD_JOBS_QUEUE, exchange=exchange, durable=True)]


def celery_config(settings: Settings) -> dict[str, Any]:
    vt = visibility_timeout(settings)
    transport = {
        "visibility_timeout": vt,
        "unacked_restore_interval": max(1, min(10, vt // 4)),
        "unacked_restore_throttle": 1,
    }
    routes: dict[str, dict[str, str]] = {name: {"queue": k.queue} for name, k in KINDS.items()}
    routes[REAP_TASK] = {"queue": "system"}
    routes[KEY_USE_TASK] = {"queue": "system"}
    routes[RETENTION_TASK] = {"queue": "system"}
    routes[AUDIT_ARCHIVE_TASK] = {"queue": "audit"}
    routes[PRIVACY_DEADLINES_TASK] = {"queue": "privacy"}
    annotations = {
        name: {
            "time_limit": time_limit(settings, name),
            "soft_time_limit": soft_time_limit(time_limit(settings, name)),
        }
        for name in KINDS
    }
    return {
        "broker_url": settings.broker_url_value(),
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,
        # No result backend (Celery's DisabledBackend): one instance shared by every thread.
        # Otherwise each thread that publishes (the API's worker threads) resolves its own
        # at its first publish, scanning the installed packages' entry points (~20 ms).
        "result_backend_thread_safe": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "default",
        "task_queues": job_queues(settings),
        "task_routes": routes,
        "task_annotations": annotations,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": settings.worker_prefetch,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": 10.0,
        "worker_enable_soft_shutdown_on_idle": True,
        # Task events cost the worker's main process a broker round trip per task (-33%
        # jobs/s measured), and only a monitor needs them: Flower switches them on while it
        # runs (it broadcasts enable_events every few seconds), so they are off otherwise.
        "worker_send_task_events": False,
        "task_send_sent_event": False,  # a second publish per job; Flower sees "received"
        "worker_hijack_root_logger": False,
        "beat_scheduler": "tasks.scheduler:DatabaseScheduler",
        "beat_max_loop_interval": settings.beat_reload_interval,
        "timezone": "UTC",
        "enable_utc": True,
    }
