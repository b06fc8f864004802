"""Distributed rate limiting: an exact sliding log in Redis, evaluated by one Lua script.

Each bucket (route class x client IP, route class x API key) is a sorted set of request
times. The script reads the clock from Redis ``TIME`` (never the API process's clock),
drops entries older than the window, and admits the request only if *every* bucket
has room, adding it to all of them in the same atomic step. So with any number of API
processes, exactly ``limit`` requests pass in any window, and a request refused by its
key's bucket does not use up its IP's. Memory is bounded by ``limit`` entries per
bucket. ``cost=0`` reads the state without taking a slot (used to refuse clients whose
failed-authentication budget is spent before their key is even looked up).

Responses describe the buckets with the ``RateLimit-Policy`` and ``RateLimit`` fields
of draft-ietf-httpapi-ratelimit-headers; a refusal carries ``Retry-After`` equal to the
time until enough entries leave the window (rounded up), never earlier.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from secops.errors import SecOpsError
from secops.services.redisconn import REDIS_ERRORS, lua_script, unavailable

KEY_PREFIX = "secops:rl:"
_SCRIPT = lua_script("""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local nonce = ARGV[2]
local n = #KEYS
local counts = {}
local allowed = 1
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i]) * 1000000
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  counts[i] = redis.call('ZCARD', KEYS[i])
  if counts[i] + cost > limit then allowed = 0 end
end
if cost == 0 then
  for i = 1, n do
    if counts[i] >= tonumber(ARGV[1 + 2 * i]) then allowed = 0 end
  end
end
local out = {allowed}
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i]) * 1000000
  local c = counts[i]
  if allowed == 1 and cost > 0 then
    for j = 1, cost do
      redis.call('ZADD', KEYS[i], now, nonce .. ':' .. i .. ':' .. j)
    end
    redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000) + 1000)
    c = c + cost
  end
  local reset = 0
  local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  local retry = 0
  local need = math.max(cost, 1)
  if c + need > limit then
    local idx = c + need - limit - 1
    local e = redis.call('ZRANGE', KEYS[i], idx, idx, 'WITHSCORES')
    if e[2] then retry = tonumber(e[2]) + window - now end
  end
  table.insert(out, c)
  table.insert(out, reset)
  table.insert(out, retry)
end
return out
""")


@dataclass(frozen=True)
class Bucket:
    """One limit: ``name`` appears in the headers, ``subject`` names whose budget it is."""

    name: str
    subject: str
    limit: int
    window: int

    @property
    def redis_key(self) -> str:
        return f"{KEY_PREFIX}{self.name}:{self.subject}"


@dataclass(frozen=True)
class BucketState:
    bucket: Bucket
    used: int
    reset_seconds: int
    retry_seconds: int

    @property
    def remaining(self) -> int:
        return max(0, self.bucket.limit - self.used)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    states: list[BucketState] = field(default_factory=list)
    others: tuple[Any, ...] = ()  # the replies to the ``along`` commands, in order

    @property
    def retry_after(self) -> int:
        """Seconds until every refusing bucket has room again (at least 1)."""
        waits = [s.retry_seconds for s in self.states if s.retry_seconds > 0]
        return max([1, *waits])

    def headers(self) -> list[tuple[str, str]]:
        """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers)."""
        if not self.states:
            return []
        policy = ", ".join(f'"{s.bucket.name}";q={s.bucket.limit};w={s.bucket.window}'
                           for s in self.states)
        current = ", ".join(f'"{s.bucket.name}";r={s.remaining};t={s.reset_seconds}'
                            for s in self.states)
        return [("RateLimit-Policy", policy), ("RateLimit", current)]


class RateLimited(SecOpsError):
    """Too many requests (429): ``decision`` says which buckets and when to retry."""

    title = "Too many requests"

    def __init__(self, decision: Decision) -> None:
        super().__init__("rate limit exceeded; retry after the time in Retry-After")
        self.decision = decision


def check(client: redis.Redis, buckets: list[Bucket], *, cost: int = 1,
          along: Callable[[Pipeline], object] | None = None) -> Decision:
    """Admit (and count) one request against every bucket at once, or refuse it.

    ``along`` adds other commands to the same round trip (they run first, whatever the
    decision: the API counts a key's use there); their replies are ``Decision.others``.
    Raises Unavailable when Redis cannot be
    reached or one of them fails: callers fail closed.
    """
    args: list[Any] = [cost, secrets.token_hex(8)]
    for b in buckets:
        args.extend([b.limit, b.window])
    keys = [b.redis_key for b in buckets]
    others: tuple[Any, ...] = ()
    try:
        if along is not None:
            raw, others = _with_others(client, keys, args, along)
        else:
            raw = _SCRIPT(keys=keys, args=args, client=client) if keys else None
    except REDIS_ERRORS as exc:
        raise unavailable("the rate limiter") from exc
    if raw is None:
        return Decision(True, others=others)
    values = [int(v) for v in raw]
    states = []
    for i, b in enumerate(buckets):
        used, reset_us, retry_us = values[1 + 3 * i: 4 + 3 * i]
        states.append(BucketState(b, used, _ceil_seconds(reset_us), _ceil_seconds(retry_us)))
    return Decision(bool(values[0]), states, others)


def _with_others(client: redis.Redis, keys: list[str], args: list[Any],
                 along: Callable[[Pipeline], object]) -> tuple[Any, tuple[Any, ...]]:
    pipe = client.pipeline(transaction=False)
    along(pipe)
    if keys:
        # EVALSHA by hand: a pipeline given the Script object asks SCRIPT EXISTS first,
        # a round trip of its own on every call.
        pipe.evalsha(_SCRIPT.sha, len(keys), *keys, *args)
    results = pipe.execute(raise_on_error=False)
    script = results.pop() if keys else None
    for result in results:
        if isinstance(result, Exception):
            raise result
    if isinstance(script, NoScriptError):  # the others are done: run the script alone
        return _SCRIPT(keys=keys, args=args, client=client), tuple(results)
    if isinstance(script, Exception):
        raise script
    return script, tuple(results)


def _ceil_seconds(microseconds: int) -> int:
    return max(0, math.ceil(microseconds / 1_000_000))
