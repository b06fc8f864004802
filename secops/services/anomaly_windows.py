"""The anomaly detector's windows in Redis, shared by every worker.

Each window is one JSON value (the engine's ``step_*`` state) under its own key. An
operation takes the window with a short lock in one round trip (a Lua script that sets
the lock and returns the value), runs the engine's step in Python, and writes the value
back and drops the lock in a second round trip, so two workers reading two files of one
host update one window in turn and see the same counts. A lock left by a worker that
died expires after ``LOCK_MS``. Windows expire with Redis TTLs (a few times their
length, in wall time); first-seen baselines are Redis sets, open incidents a hash.

Incident bookkeeping (open, extend, close) is read-modify-write without a lock: two
workers extending the same open incident at the same instant can lose one increment of
its count, never the incident.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from typing import Any, TypeVar

import redis

from secops.anomaly.store import (
    Fired,
    Incident,
    RateView,
    ewma_add,
    step_counter,
    step_distinct,
    step_leaky,
    step_rate,
    step_tally,
    step_temporal,
)
from secops.errors import Unavailable
from secops.services.redisconn import lua_script

PREFIX = "secops:an:"
LOCK_MS = 5000
WAIT_SECONDS = 5.0
MIN_TTL = 120
_TAKE = lua_script("""
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[1])}
end
return {0, false}
""")
_PUT = lua_script("""
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
""")
T = TypeVar("T")


def _name(kind: str, key: str) -> str:
    if len(key) > 200:   # entities come from log lines: keep keys short
        key = key[:120] + "#" + hashlib.sha256(key.encode()).hexdigest()
    return f"{PREFIX}{kind}:{key}"


class RedisWindowStore:
    """:class:`secops.anomaly.store.WindowStore` on Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def _update(self, key: str, ttl: float, step: Callable[[Any], tuple[Any, T]]) -> T:
        name = _name("w", key)
        lock = name + ":lock"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + WAIT_SECONDS
        delay = 0.001
        while True:
            got, raw = _TAKE(keys=[name, lock], args=[token, LOCK_MS], client=self.client)
            if got:
                break
            if time.monotonic() > deadline:
                raise Unavailable("an anomaly window stayed locked too long")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            state, result = step(json.loads(raw) if raw else None)
        except BaseException:
            _PUT(keys=[name, lock], args=[token, "", 0], client=self.client)
            raise
        value = "" if state is None else json.dumps(state, separators=(",", ":"))
        _PUT(keys=[name, lock], args=[token, value, int(max(MIN_TTL, ttl * 3))],
             client=self.client)
        return result

    def counter(self, key: str, ts: float, item: str, window: float,
                threshold: int) -> Fired | None:
        return self._update(key, window,
                            lambda s: step_counter(s, ts, item, window, threshold))

    def distinct(self, key: str, ts: float, value: str, item: str, window: float,
                 threshold: int) -> Fired | None:
        return self._update(key, window,
                            lambda s: step_distinct(s, ts, value, item, window, threshold))

    def leaky(self, key: str, ts: float, item: str, capacity: float, leak: float,
              keep: int) -> Fired | None:
        return self._update(key, capacity * leak,
                            lambda s: step_leaky(s, ts, item, capacity, leak, keep))

    def tally(self, key: str, ts: float, item: str, window: float, success: bool | None,
              values: Mapping[str, str | None], caps: Mapping[str, int], keep: int,
              check: Callable[[dict[str, float]], bool]) -> Fired | None:
        return self._update(key, window, lambda s: step_tally(s, ts, item, window, success,
                                                              values, caps, keep, check))

    def temporal(self, key: str, ts: float, item: str, matched: Iterable[int], parts: int,
                 window: float, ordered: bool, keep: int) -> Fired | None:
        hits = list(matched)
        return self._update(key, window, lambda s: step_temporal(s, ts, item, hits, parts,
                                                                 window, ordered, keep))

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView:
        raw = self.client.get(_name("w", population))
        pop = json.loads(raw) if raw else [0.0, 0.0, 0]
        closed: list[float] = []

        def step(state: Any) -> tuple[Any, RateView]:
            if state is not None and int(ts // interval) > state[0]:
                closed.append(state[1])
            return step_rate(state, list(pop), ts, amount, interval, alpha)

        view = self._update(key, interval * 48, step)
        if closed:   # fold the finished interval into everyone's baseline
            def fold(p: Any) -> tuple[Any, None]:
                p = p or [0.0, 0.0, 0]
                ewma_add(p, closed[0], alpha)
                return p, None
            self._update(population, interval * 48, fold)
        return view

    def hours(self, key: str, hour: int) -> tuple[int, int]:
        def step(state: Any) -> tuple[Any, tuple[int, int]]:
            mask, n = state or (0, 0)
            return [mask | (1 << hour), n + 1], (mask, n)
        return self._update(key, 86400 * 90, step)

    def first_seen(self, key: str, value: str) -> bool | None:
        name = _name("seen", key)
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(name)
        pipe.sismember(name, value)
        exists, member = pipe.execute()
        if not exists:
            return None
        if member:
            return False
        return bool(self.client.sadd(name, value))

    def remember(self, key: str, values: Iterable[str]) -> None:
        items = list(values)
        if items:
            self.client.sadd(_name("seen", key), *items)

    def incident(self, key: str) -> Incident | None:
        raw = self.client.hget(PREFIX + "incidents", key)
        return Incident(**json.loads(raw)) if raw else None

    def put_incident(self, key: str, incident: Incident) -> None:
        self.client.hset(PREFIX + "incidents", key, json.dumps(asdict(incident)))

    def pop_incident(self, key: str) -> Incident | None:
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(PREFIX + "incidents", key)
        pipe.hdel(PREFIX + "incidents", key)
        raw, removed = pipe.execute()
        return Incident(**json.loads(raw)) if raw and removed else None

    def open_incidents(self) -> Iterator[tuple[str, Incident]]:
        for key, raw in self.client.hscan_iter(PREFIX + "incidents"):
            name = key.decode() if isinstance(key, bytes) else str(key)
            yield name, Incident(**json.loads(raw))

    def expire(self, now: float) -> None:
        """Windows expire through their Redis TTLs."""
