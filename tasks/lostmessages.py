"""Jobs whose message a Redis broker lost when it was killed, found right after it restarts.

Celery's Redis transport takes a message off its queue (``BRPOP``) and then records it as
unacknowledged in a second command; a broker killed between the two keeps the job
``queued`` in the database with no message anywhere. The reaper's age rule
(``SECOPS_QUEUED_REPUBLISH_AFTER``) publishes such a job again after minutes at the
earliest. This module makes the wait one reaper interval: each reaper run compares the
broker's ``run_id`` with the one it saw last (kept in the broker itself); when it changed,
the broker restarted, and every job queued before that restart whose message is on no
queue (at any priority) and not among the unacknowledged ones is published again. A job
whose message moved meanwhile may be published twice, which is harmless: the claim makes
a second delivery of a job that already ran a no-op. RabbitMQ keeps its messages in
quorum queues and redelivers unacknowledged ones itself: nothing to do there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import redis

from secops.config import Settings
from secops.db.base import utcnow
from secops.db.session import session_scope
from secops.kinds import QUEUES
from secops.services import jobs as job_service
from tasks.app import app

log = logging.getLogger("secops.tasks")
RUN_ID_KEY = "secops:broker:run_id"  # the broker's run_id the last check saw
CHUNK = 1000  # messages read per round trip


def _message_ids(raw: bytes | str) -> str | None:
    """The task id (our job id) of one message as the Redis transport stores it."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        return None
    if isinstance(payload, list) and payload:  # unacknowledged: [message, exchange, key]
        payload = payload[0]
    headers = payload.get("headers") if isinstance(payload, dict) else None
    job_id = headers.get("id") if isinstance(headers, dict) else None
    return job_id if isinstance(job_id, str) else None


def _queued_ids(channel: Any) -> Iterator[str]:
    client = channel.client
    for queue in QUEUES:
        for priority in channel.priority_steps:
            name = channel._q_for_pri(queue, priority)
            start = 0
            while True:
                chunk = client.lrange(name, start, start + CHUNK - 1)
                for raw in chunk:
                    if (job_id := _message_ids(raw)) is not None:
                        yield job_id
                if len(chunk) < CHUNK:
                    break
                start += CHUNK
    for _, raw in client.hscan_iter(channel.unacked_key, count=CHUNK):
        if (job_id := _message_ids(raw)) is not None:
            yield job_id


def lost_after_restart(settings: Settings) -> list[tuple[str, str]]:
    """``(job_id, kind)`` of the jobs to publish again because the broker restarted and
    lost their message; marks them republished. Empty unless the broker restarted since
    the last call (or this is the first call against this broker's data)."""
    if settings.broker_is_amqp():
        return []
    try:
        return _check()
    except (OSError, redis.RedisError) as exc:  # the broker is down again: next run
        log.warning("the broker could not be checked for lost messages",
                    extra={"error": type(exc).__name__})
        return []


def _check() -> list[tuple[str, str]]:
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        client = channel.client
        info = client.info("server")
        run_id = str(info["run_id"])
        seen = client.get(RUN_ID_KEY)
        if seen is not None and (seen.decode() if isinstance(seen, bytes) else seen) == run_id:
            return []
        # Redis counts its uptime in whole seconds between two clock readings, so the
        # restart was at most a second after this: jobs queued up to then had their
        # message on the old broker, or were published to the new one (a job committed in
        # that second whose publish is still on its way is at worst delivered twice).
        restarted_by = utcnow() - timedelta(seconds=int(info["uptime_in_seconds"]) - 1)
        with session_scope() as session:
            candidates = job_service.queued_ids_before(session=session, before=restarted_by)
        missing = candidates - set(_queued_ids(channel)) if candidates else set()
        lost: list[tuple[str, str]] = []
        if missing:
            with session_scope() as session:  # still queued now, read after the broker
                jobs = job_service.still_queued(session=session, job_ids=missing)
                job_service.mark_republished(session=session, jobs=jobs)
                lost = [(job.id, job.kind) for job in jobs]
        client.set(RUN_ID_KEY, run_id)
    if lost:
        log.warning("jobs whose message the broker lost in a restart are published again",
                    extra={"jobs": len(lost)})
    return lost
