"""Console sessions, kept in Redis.

A session id is 32 random bytes (256 bits, base64url) and lives only in the browser's
cookie; Redis keys name its SHA-256, so a Redis dump or ``MONITOR`` does not hand out
live session ids. A session holds the user, the sign-in stage (``anon`` before sign-in,
``mfa`` between password and second factor, ``setup`` for a user who must enrol a
second factor first, ``full``), the CSRF token, its start and last-seen times, the
client's address and user agent, and short-lived WebAuthn challenges.

Timeouts: the key's TTL is the idle timeout and each request renews it; the absolute
timeout counts from sign-in and is checked on every load. Each user's sessions are
indexed in a set, for the sessions page, "sign out everywhere", and ending a user's
sessions when the user is disabled or a factor changes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from secops.config import get_settings
from secops.services.redisconn import REDIS_ERRORS, unavailable

PREFIX = "secops:cs:s:"
USER_PREFIX = "secops:cs:u:"
ANON_TTL = 900
STAGES = ("anon", "mfa", "setup", "full")


@dataclass
class ConsoleSession:
    csrf: str
    stage: str = "anon"
    user_id: str | None = None
    role: str | None = None
    name: str | None = None
    created: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.time)
    ip: str = ""
    user_agent: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.stage == "full" and self.user_id is not None


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _ttl(sess: ConsoleSession) -> int:
    settings = get_settings()
    if sess.stage == "anon":
        return ANON_TTL
    left = int(sess.created + settings.console_absolute_timeout - time.time())
    return max(1, min(settings.console_idle_timeout, left))


def new(*, ip: str, user_agent: str) -> ConsoleSession:
    return ConsoleSession(csrf=secrets.token_urlsafe(32), ip=ip[:64], user_agent=user_agent[:200])


def save(kv: redis.Redis, session_id: str, sess: ConsoleSession) -> None:
    key = PREFIX + digest(session_id)
    try:
        pipe = kv.pipeline(transaction=True)
        pipe.set(key, json.dumps(asdict(sess)), ex=_ttl(sess))
        if sess.user_id:
            pipe.sadd(USER_PREFIX + sess.user_id, digest(session_id))
            pipe.expire(USER_PREFIX + sess.user_id, get_settings().console_absolute_timeout)
        pipe.execute()
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc


def create(kv: redis.Redis, sess: ConsoleSession) -> str:
    session_id = secrets.token_urlsafe(32)
    save(kv, session_id, sess)
    return session_id


def load(kv: redis.Redis, session_id: str | None) -> ConsoleSession | None:
    """The live session for ``session_id`` (renewing its idle timeout), else None."""
    if not session_id or len(session_id) > 100:
        return None
    key = PREFIX + digest(session_id)
    try:
        raw = kv.get(key)
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc
    if raw is None:
        return None
    sess = ConsoleSession(**json.loads(raw))
    if sess.stage != "anon" and time.time() >= sess.created + get_settings().console_absolute_timeout:
        delete(kv, session_id)
        return None
    sess.last_seen = time.time()
    save(kv, session_id, sess)
    return sess


def delete(kv: redis.Redis, session_id: str) -> None:
    key_digest = digest(session_id)
    try:
        raw = kv.getdel(PREFIX + key_digest)
        if raw is not None:
            user_id = json.loads(raw).get("user_id")
            if user_id:
                kv.srem(USER_PREFIX + user_id, key_digest)
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc


def rotate(kv: redis.Redis, old_id: str | None, sess: ConsoleSession) -> str:
    """Store ``sess`` under a new id with a new CSRF token and delete the old id (at
    sign-in and privilege change: an id known before is worth nothing after)."""
    if old_id:
        delete(kv, old_id)
    sess.csrf = secrets.token_urlsafe(32)
    return create(kv, sess)


def _members(kv: redis.Redis, user_id: str) -> list[str]:
    return [d.decode() if isinstance(d, bytes) else str(d)
            for d in kv.smembers(USER_PREFIX + user_id)]  # type: ignore[union-attr]


def list_for_user(kv: redis.Redis, user_id: str) -> list[tuple[str, ConsoleSession]]:
    """(digest, session) of the user's live sessions, newest first."""
    try:
        digests = _members(kv, user_id)
        found = []
        for key_digest in digests:
            raw = kv.get(PREFIX + key_digest)
            if raw is None:
                kv.srem(USER_PREFIX + user_id, key_digest)
                continue
            found.append((key_digest, ConsoleSession(**json.loads(raw))))
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc
    return sorted(found, key=lambda item: item[1].created, reverse=True)


def end_for_user(kv: redis.Redis, user_id: str, *, keep: str | None = None) -> int:
    """End every session of ``user_id`` except the one with id ``keep``; how many ended."""
    keep_digest = digest(keep) if keep else None
    try:
        digests = _members(kv, user_id)
        ended = 0
        for key_digest in digests:
            if key_digest == keep_digest:
                continue
            ended += int(kv.delete(PREFIX + key_digest))
            kv.srem(USER_PREFIX + user_id, key_digest)
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc
    return ended


def end_one(kv: redis.Redis, user_id: str, key_digest: str) -> bool:
    """End one of the user's own sessions, named by its digest (the sessions page)."""
    try:
        if not kv.sismember(USER_PREFIX + user_id, key_digest):
            return False
        kv.srem(USER_PREFIX + user_id, key_digest)
        return bool(kv.delete(PREFIX + key_digest))
    except REDIS_ERRORS as exc:
        raise unavailable("the session store") from exc
