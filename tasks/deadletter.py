"""RabbitMQ's dead letters: declaring where they go, and failing the jobs they carried.

A job queue on RabbitMQ is a quorum queue with ``x-delivery-limit``: a message returned to
it more than SECOPS_BROKER_DELIVERY_LIMIT times (each time its worker process died or lost
the broker before acknowledging it) is dead-lettered to the fanout exchange
``secops.dead``. That exchange copies it into two queues: ``secops.dead``, which nothing
in SecOps consumes (the operator inspects it and replays or purges it, see
docs/operations.md), and ``secops.dead.jobs``, which the reaper drains to fail each job
whose message died, so no job waits for a message that will never come. On Redis there
are no dead letters and these functions do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from secops.config import Settings

log = logging.getLogger("secops.tasks")
DRAIN_LIMIT = 1000  # dead letters read per reaper run


def declare(connection: Any) -> None:
    """Declare the dead-letter exchange and its two queues (idempotent)."""
    from tasks.routing import dead_letter_queues

    channel = connection.default_channel
    for queue in dead_letter_queues():
        queue.bind(channel).declare()


def drain(settings: Settings, connection: Any,
          limit: int = DRAIN_LIMIT) -> tuple[list[str], Callable[[], None]]:
    """Read up to ``limit`` messages off ``secops.dead.jobs``: their job ids, and the
    function that acknowledges them. Call it once the jobs' failure is committed: until
    then a crash leaves the messages in the queue for the next run (failing a job twice
    is a no-op)."""
    from tasks.routing import DEAD_JOBS_QUEUE, dead_letter_queues

    if not settings.broker_is_amqp():
        return [], lambda: None
    declare(connection)
    queue = next(q for q in dead_letter_queues() if q.name == DEAD_JOBS_QUEUE)
    bound = queue.bind(connection.default_channel)
    job_ids: list[str] = []
    messages: list[Any] = []
    while len(messages) < limit:
        message = bound.get(no_ack=False, accept=["json"])
        if message is None:
            break
        messages.append(message)
        job_id = (message.headers or {}).get("id")
        if isinstance(job_id, str):
            job_ids.append(job_id)

    def ack() -> None:
        for message in messages:
            message.ack()

    return job_ids, ack
