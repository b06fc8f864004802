"""``Idempotency-Key`` handling for requests that create jobs.

The first request with a key reserves it in its own short transaction (so a concurrent
request sees the reservation), creates its jobs, then records their ids. A later request
with the same key and the same body gets the same jobs; with another body, InvalidInput
(422); while the first is still creating, IdempotencyInProgress (409). A reservation
left by a crashed request is taken over after ``STALE_AFTER``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from secops.db.base import utcnow
from secops.db.models import IdempotencyRecord
from secops.errors import IdempotencyInProgress, InvalidInput

STALE_AFTER = timedelta(seconds=60)
MAX_KEY_LENGTH = 200


def request_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    record_id: int
    job_ids: list[str] | None  # set when an earlier request already created the jobs


def reserve(*, session: Session, owner: str, key: str, body_hash: str) -> Reservation:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters")
    record = IdempotencyRecord(owner=owner, key=key, request_hash=body_hash)
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
        return Reservation(record_id=record.id, job_ids=None)
    except IntegrityError:
        pass
    existing = session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.owner == owner,
                                        IdempotencyRecord.key == key)
    )
    if existing is None:  # deleted between our insert and select: the caller may retry
        raise IdempotencyInProgress("a request with this Idempotency-Key is in progress")
    if existing.request_hash != body_hash:
        raise InvalidInput("Idempotency-Key was already used with a different request body")
    if existing.job_ids is not None:
        return Reservation(record_id=existing.id, job_ids=list(existing.job_ids))
    if existing.created_at > utcnow() - STALE_AFTER:
        raise IdempotencyInProgress("a request with this Idempotency-Key is in progress")
    taken = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.job_ids.is_(None),
               IdempotencyRecord.created_at == existing.created_at)
        .values(created_at=utcnow())
    )
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        raise IdempotencyInProgress("a request with this Idempotency-Key is in progress")
    return Reservation(record_id=existing.id, job_ids=None)


def complete(*, session: Session, record_id: int, job_ids: list[str]) -> None:
    session.execute(
        update(IdempotencyRecord).where(IdempotencyRecord.id == record_id).values(job_ids=job_ids)
    )


def release(*, session: Session, record_id: int) -> None:
    """Forget a reservation whose request failed, so the client can retry with the same key."""
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


def prune(*, session: Session, older_than: timedelta) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
