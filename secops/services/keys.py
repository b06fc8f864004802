"""API keys: 256-bit random secrets, kept only as HMAC-SHA256 digests, found by a prefix.

A key reads ``secops_<prefix>_<secret>``: the 8-character prefix is visible and
indexed, the secret is 32 random bytes (base64url). The stored digest is
HMAC-SHA256(server key, whole key), with the server key from the secret reader
(``api_key_hmac``), so a database dump alone cannot be used to log in or to test
guesses offline. Every failure, whatever its cause, is the same AuthenticationFailed.

A key's use (``usage_count``, ``last_used_at``) is counted in Redis on every request it
authenticates (:func:`queue_use`), not written to the database there: authentication is
read-only, so requests do not queue on SQLite's write lock or on a shared key's row in
PostgreSQL. Beat folds the counts into the table every ``key_use_flush_interval``
seconds (:func:`pending_use` and :func:`apply_use`), and so does every read of keys, so
what an admin sees is current.

An API process remembers each key it authenticated for SECOPS_API_KEY_CACHE_SECONDS
(:class:`KeyCache`, by the key's digest; unknown or failing keys are never remembered),
so a polling client costs no database read per request. Every commit that revokes,
rotates or changes a key increments a generation counter in Redis
(:data:`KEYS_GENERATION`); the API reads it in the round trip it makes before
authenticating anyway, and an entry remembered under another generation is looked up
again. Revocation therefore takes effect at the next request on every process; only if
Redis cannot take the increment does an entry live out its few seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from sqlalchemy import case, event, or_, select, update
from sqlalchemy.orm import Session

from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import ApiKey
from secops.errors import AuthenticationFailed, InvalidInput, NotFound
from secops.kinds import KINDS
from secops.services.redisconn import REDIS_ERRORS, unavailable

ROLES = ("admin", "analyst", "auditor", "service")
KEY_PATTERN = re.compile(r"^secops_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
log = logging.getLogger("secops.keys")
USE_COUNTS = "secops:keyuse:count"  # hash: key id -> requests not yet in the table
USE_LAST = "secops:keyuse:last"  # sorted set: key id -> epoch seconds of its latest use
KEYS_GENERATION = "secops:keys:generation"  # incremented after each committed key change
_KEYS_CHANGED = "secops.keys_changed"  # Session.info flag: this transaction changes keys


@dataclass(frozen=True)
class IssuedKey:
    """A newly created key: ``plaintext`` exists only here and is shown once."""

    record: ApiKey
    plaintext: str

    def __repr__(self) -> str:
        return f"IssuedKey(record={self.record!r}, plaintext='**********')"


def digest(plaintext: str) -> str:
    server_key = get_settings().secret("api_key_hmac").get_secret_value().encode()
    return hmac.new(server_key, plaintext.encode(), hashlib.sha256).hexdigest()


def create_key(
    *,
    session: Session,
    name: str,
    role: str,
    created_by: str,
    allowed_kinds: list[str] | None = None,
    expires_in_days: int | None = None,
) -> IssuedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("key name must be 1 to 100 characters")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    kinds = sorted(set(allowed_kinds or []))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput("unknown job kinds in allowed_kinds", details={"unknown": unknown})
    if role == "service" and not kinds:
        raise InvalidInput("a service key must list the job kinds it may submit")
    days = expires_in_days if expires_in_days is not None else get_settings().api_key_default_days
    if days < 1 or days > 3650:
        raise InvalidInput("expiry must be between 1 and 3650 days")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"secops_{prefix}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        name=name,
        prefix=prefix,
        digest=digest(plaintext),
        role=role,
        allowed_kinds=kinds,
        created_by=created_by,
        expires_at=utcnow() + timedelta(days=days),
        usage_count=0,
    )
    session.add(record)
    session.flush()
    return IssuedKey(record=record, plaintext=plaintext)


def authenticate(*, session: Session, token: str | None, now: datetime | None = None) -> ApiKey:
    """The live key for ``token``; one AuthenticationFailed for unknown, bad, expired, revoked."""
    match = KEY_PATTERN.match(token or "")
    if match is None:
        raise AuthenticationFailed()
    expected = digest(token or "")
    record = session.scalar(select(ApiKey).where(ApiKey.prefix == match.group(1)))
    # Compare even when there is no record, so timing does not tell whether a prefix exists.
    stored = record.digest if record is not None else "0" * 64
    previous = (record.previous_digest if record is not None else None) or "1" * 64
    now = now or utcnow()
    current_ok = hmac.compare_digest(stored, expected)
    previous_ok = hmac.compare_digest(previous, expected)
    if record is None or not (current_ok or previous_ok):
        raise AuthenticationFailed()
    if not current_ok and (record.previous_valid_until is None
                           or record.previous_valid_until <= now):
        raise AuthenticationFailed()  # a rotated-out secret past its grace period
    if record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
        raise AuthenticationFailed()
    return record


@dataclass(frozen=True)
class KnownKey:
    """What a remembered key authenticates as, and until when without a new lookup."""

    id: str
    name: str
    role: str
    allowed_kinds: tuple[str, ...]
    valid_until: datetime | None  # the key's expiry, or the end of a rotated secret's grace
    generation: object  # the KEYS_GENERATION value read before the lookup
    fresh_until: float  # time.monotonic()


class KeyCache:
    """Keys this process authenticated, by digest, for a few seconds (see the module's
    docstring). Thread-safe; bounded (cleared when full)."""

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: dict[str, KnownKey] = {}
        self._lock = threading.Lock()

    def get(self, token: str | None, generation: object, now: datetime | None = None) -> KnownKey | None:
        """The remembered key for ``token`` if it is still fresh, of this generation and
        not past its validity; else None (look it up)."""
        known = self.candidate(token, now)
        if known is None or known.generation != generation:
            return None
        return known

    def candidate(self, token: str | None, now: datetime | None = None) -> KnownKey | None:
        """The remembered key for ``token`` if it is still fresh and not past its
        validity, whatever its generation: the caller compares ``generation`` with
        Redis's before trusting it (see :meth:`get`)."""
        if not token or KEY_PATTERN.match(token) is None:
            return None
        known = self._entries.get(digest(token))
        if known is None or known.fresh_until < time.monotonic():
            return None
        if known.valid_until is not None and known.valid_until <= (now or utcnow()):
            return None
        return known

    def put(self, token: str, record: ApiKey, generation: object) -> None:
        seconds = get_settings().api_key_cache_seconds
        if seconds <= 0:
            return
        expected = digest(token)
        valid_until = record.expires_at
        if not hmac.compare_digest(record.digest, expected):  # the previous secret, in its grace
            until = record.previous_valid_until
            valid_until = until if valid_until is None or (until and until < valid_until) else valid_until
        known = KnownKey(record.id, record.name, record.role, tuple(record.allowed_kinds or ()),
                         valid_until, generation, time.monotonic() + seconds)
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[expected] = known

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()


@event.listens_for(Session, "after_commit")
def _announce_key_change(session: Session) -> None:
    """After a commit that revoked, rotated or changed a key: a new generation, so every
    API process looks its keys up again."""
    if not session.info.pop(_KEYS_CHANGED, False):
        return
    from secops.services.redisconn import get_redis

    try:
        get_redis().incr(KEYS_GENERATION)
    except Exception:  # noqa: BLE001 - Redis down: remembered keys then expire on their own
        log.warning("could not announce a key change; remembered keys expire within %s s",
                    get_settings().api_key_cache_seconds)


@event.listens_for(Session, "after_rollback")
def _forget_key_change(session: Session) -> None:
    session.info.pop(_KEYS_CHANGED, None)


def queue_use(pipe: redis.client.Pipeline, key_id: str, when: datetime | None = None) -> None:
    """Count one request authenticated by ``key_id``: the commands go in ``pipe``, which
    the API sends with the request's rate-limit step (one round trip; if Redis is down,
    the request is refused as the rate limiter refuses it)."""
    pipe.hincrby(USE_COUNTS, key_id, 1)
    pipe.zadd(USE_LAST, {key_id: (when or utcnow()).timestamp()}, gt=True)


@dataclass(frozen=True)
class PendingUse:
    """Uses counted in Redis and taken out of it, to be added to the table."""

    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)  # epoch seconds


def _take_use(kv: redis.Redis) -> PendingUse:
    pipe = kv.pipeline(transaction=True)  # MULTI: a use noted meanwhile waits for the next flush
    pipe.hgetall(USE_COUNTS)
    pipe.zrange(USE_LAST, 0, -1, withscores=True)
    pipe.delete(USE_COUNTS, USE_LAST)
    counts, last, _ = pipe.execute()
    return PendingUse({k.decode(): int(v) for k, v in counts.items()},
                      {k.decode(): float(v) for k, v in last})


def _restore_use(kv: redis.Redis, pending: PendingUse) -> None:
    pipe = kv.pipeline(transaction=True)
    for key_id, count in pending.counts.items():
        pipe.hincrby(USE_COUNTS, key_id, count)
    if pending.last:
        pipe.zadd(USE_LAST, pending.last, gt=True)
    pipe.execute()


@contextmanager
def pending_use(kv: redis.Redis) -> Iterator[PendingUse]:
    """The uses counted since the last flush, taken out of Redis; put back if the block
    fails (its transaction did not commit them), so none is lost or counted twice."""
    try:
        pending = _take_use(kv)
    except REDIS_ERRORS as exc:
        raise unavailable("key accounting") from exc
    try:
        yield pending
    except BaseException:
        try:
            _restore_use(kv, pending)
        except REDIS_ERRORS:
            log.error("key use could not be put back", extra={"keys": len(pending.counts)})
        raise


def apply_use(*, session: Session, pending: PendingUse) -> int:
    """Add taken uses to their keys' rows (a deleted key's are dropped); rows changed."""
    changed = 0
    for key_id in sorted(set(pending.counts) | set(pending.last)):
        values: dict[str, object] = {"usage_count": ApiKey.usage_count
                                     + pending.counts.get(key_id, 0)}
        if key_id in pending.last:
            when = datetime.fromtimestamp(pending.last[key_id], UTC)
            values["last_used_at"] = case(
                (or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < when), when),
                else_=ApiKey.last_used_at)
        result = session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        changed += result.rowcount  # type: ignore[attr-defined]
    return changed


def list_keys(*, session: Session, include_revoked: bool = False) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(query).all())


def get_key(*, session: Session, key_id: str) -> ApiKey:
    record = session.get(ApiKey, key_id)
    if record is None:
        record = session.scalar(select(ApiKey).where(ApiKey.prefix == key_id))
    if record is None:
        raise NotFound("API key not found")
    return record


def revoke_key(*, session: Session, key_id: str) -> ApiKey:
    """Revoke by id or prefix; takes effect on every API process at the next request."""
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
    session.info[_KEYS_CHANGED] = True
    return record


def rotate_key(*, session: Session, key_id: str, grace_hours: int | None = None) -> IssuedKey:
    """A new secret for the same key (id, prefix, role, usage); the old secret keeps
    working for ``grace_hours`` (default SECOPS_API_KEY_ROTATION_GRACE_HOURS, 24).

    A second rotation within the grace period ends the first old secret at once: only
    the secret just replaced is honoured.
    """
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is not None:
        raise InvalidInput("a revoked key cannot be rotated")
    hours = grace_hours if grace_hours is not None else get_settings().api_key_rotation_grace_hours
    if hours < 0 or hours > 24 * 30:
        raise InvalidInput("grace period must be between 0 and 720 hours")
    now = utcnow()
    plaintext = f"secops_{record.prefix}_{secrets.token_urlsafe(32)}"
    record.previous_digest = record.digest
    record.previous_valid_until = now + timedelta(hours=hours)
    record.digest = digest(plaintext)
    record.rotated_at = now
    session.info[_KEYS_CHANGED] = True
    session.flush()
    return IssuedKey(record=record, plaintext=plaintext)


def update_key(*, session: Session, key_id: str, name: str | None = None,
               role: str | None = None, allowed_kinds: list[str] | None = None) -> ApiKey:
    """Rename a key, change its role or its job kinds (same rules as at creation)."""
    record = get_key(session=session, key_id=key_id)
    if record.revoked_at is not None:
        raise InvalidInput("a revoked key cannot be changed")
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("key name must be 1 to 100 characters")
        record.name = name
    new_role = role if role is not None else record.role
    if new_role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    kinds = sorted(set(allowed_kinds)) if allowed_kinds is not None else list(record.allowed_kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInput("unknown job kinds in allowed_kinds", details={"unknown": unknown})
    if new_role == "service" and not kinds:
        raise InvalidInput("a service key must list the job kinds it may submit")
    record.role, record.allowed_kinds = new_role, kinds
    session.info[_KEYS_CHANGED] = True
    session.flush()
    return record


def has_admin_key(*, session: Session) -> bool:
    now = utcnow()
    return (
        session.scalar(
            select(ApiKey.id).where(
                ApiKey.role == "admin", ApiKey.revoked_at.is_(None), ApiKey.expires_at > now
            ).limit(1)
        )
        is not None
    )
