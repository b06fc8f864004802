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
# The sliding log as a Lua function: buckets KEYS[k0+1 .. k0+n], their limits and windows
# in ARGV[a0+1 ..] (limit, window, limit, window, ...), all at time ``now`` (microseconds).
_LIMIT = """
local function limit(now, cost, nonce, k0, n, a0)
  local counts = {}
  local allowed = 1
  for i = 1, n do
    local lim = tonumber(ARGV[a0 - 1 + 2 * i])
    local window = tonumber(ARGV[a0 + 2 * i]) * 1000000
    redis.call('ZREMRANGEBYSCORE', KEYS[k0 + i], '-inf', now - window)
    counts[i] = redis.call('ZCARD', KEYS[k0 + i])
    if counts[i] + cost > lim then allowed = 0 end
  end
  if cost == 0 then
    for i = 1, n do
      if counts[i] >= tonumber(ARGV[a0 - 1 + 2 * i]) then allowed = 0 end
    end
  end
  local out = {allowed}
  for i = 1, n do
    local key = KEYS[k0 + i]
    local lim = tonumber(ARGV[a0 - 1 + 2 * i])
    local window = tonumber(ARGV[a0 + 2 * i]) * 1000000
    local c = counts[i]
    if allowed == 1 and cost > 0 then
      for j = 1, cost do
        redis.call('ZADD', key, now, nonce .. ':' .. i .. ':' .. j)
      end
      redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
      c = c + cost
    end
    local reset = 0
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if oldest[2] then reset = tonumber(oldest[2]) + window - now end
    local retry = 0
    local need = math.max(cost, 1)
    if c + need > lim then
      local idx = c + need - lim - 1
      local e = redis.call('ZRANGE', key, idx, idx, 'WITHSCORES')
      if e[2] then retry = tonumber(e[2]) + window - now end
    end
    table.insert(out, c)
    table.insert(out, reset)
    table.insert(out, retry)
  end
  return out
end
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""
# ARGV: cost, nonce, then limit and window of each bucket in KEYS.
_SCRIPT = lua_script(_LIMIT + """
return limit(now, tonumber(ARGV[1]), ARGV[2], 0, #KEYS, 2)
""")
# A request by a key this process remembers, in one step (see check_known): KEYS are the
# peeked buckets (``first`` of them), the guard's key, the key-use hash and sorted set,
# then the counted buckets. ARGV: nonce, first, whether the guard must exist (1/0), its
# expected value, the key id, the use's time (epoch seconds), the counted buckets' cost,
# then limit and window of every bucket, the peeked ones first. Returns the guard's
# value (or false), whether the rest ran (1/0), the peek's result, then (if it ran) the
# count's result.
_KNOWN_SCRIPT = lua_script(_LIMIT + """
local first = tonumber(ARGV[2])
local peek = limit(now, 0, ARGV[1], 0, first, 7)
local guard = redis.call('GET', KEYS[first + 1])
local same
if ARGV[3] == '1' then same = guard == ARGV[4] else same = guard == false end
local out = {guard, 0}
for _, v in ipairs(peek) do table.insert(out, v) end
if peek[1] == 1 and same then
  out[2] = 1
  redis.call('HINCRBY', KEYS[first + 2], ARGV[5], 1)
  redis.call('ZADD', KEYS[first + 3], 'GT', ARGV[6], ARGV[5])
  local counted = limit(now, tonumber(ARGV[7]), ARGV[1], first + 3, #KEYS - first - 3,
                        7 + 2 * first)
  for _, v in ipairs(counted) do table.insert(out, v) end
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
    return _decision(buckets, [int(v) for v in raw], others)


def _decision(buckets: list[Bucket], values: list[int],
              others: tuple[Any, ...] = ()) -> Decision:
    """The script's ``[allowed, used, reset, retry, ...]`` for ``buckets`` as a Decision."""
    states = []
    for i, b in enumerate(buckets):
        used, reset_us, retry_us = values[1 + 3 * i: 4 + 3 * i]
        states.append(BucketState(b, used, _ceil_seconds(reset_us), _ceil_seconds(retry_us)))
    return Decision(bool(values[0]), states, others)


@dataclass(frozen=True)
class KnownCheck:
    """What :func:`check_known` found: the peek at the first buckets, the guard key's
    value, and the decision on the counted buckets (None when the peek refused or the
    guard had moved, so nothing was counted)."""

    peek: Decision
    guard: bytes | None
    counted: Decision | None


def check_known(client: redis.Redis, peeked: list[Bucket], counted: list[Bucket], *,
                guard_key: str, guard: bytes | None, use: tuple[str, str, str, float],
                cost: int = 1) -> KnownCheck:
    """In one atomic step: peek at ``peeked`` (``cost=0``); read ``guard_key``; and only
    if the peek allows and ``guard_key`` still holds ``guard`` (None: absent), count
    one use (``use`` = the hash and the sorted set of :func:`secops.services.keys.queue_use`,
    the key id, the time) and admit ``cost`` against ``counted``, exactly as
    ``check(peeked, cost=0)`` followed by ``check(counted, cost, along=the use)`` would.
    Unavailable when Redis cannot be reached."""
    counts_key, last_key, key_id, when = use
    keys = [b.redis_key for b in peeked] + [guard_key, counts_key, last_key] + \
        [b.redis_key for b in counted]
    args: list[Any] = [secrets.token_hex(8), len(peeked), 0 if guard is None else 1,
                       guard if guard is not None else b"", key_id, repr(float(when)), cost]
    for b in (*peeked, *counted):
        args.extend([b.limit, b.window])
    try:
        raw = _KNOWN_SCRIPT(keys=keys, args=args, client=client)
    except REDIS_ERRORS as exc:
        raise unavailable("the rate limiter") from exc
    value = raw[0]
    ran = int(raw[1]) == 1
    values = [int(v) for v in raw[2:]]
    size = 1 + 3 * len(peeked)
    peek = _decision(peeked, values[:size])
    return KnownCheck(peek, value, _decision(counted, values[size:]) if ran else None)


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
