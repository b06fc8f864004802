"""The anomaly detector's windows in Redis, shared by every worker.

Each window is one JSON value (the engine's ``step_*`` state) under its own key. The
detector feeds a shared store in chunks: :meth:`RedisWindowStore.batch` takes every
window a chunk of events needs, with a lock each, in one round trip (all or none, so two
workers never deadlock), the engine's steps run in Python on them, and one more round
trip writes them back and drops the locks; a window outside a batch is taken and
written back on its own the same way. Two workers reading two files of one host thus
update one window in turn and see the same counts. A lock left by a worker that
died expires after ``LOCK_MS``. Windows expire with Redis TTLs (a few times their
length, in wall time); first-seen baselines are Redis sets, open incidents a hash.

Open incidents live in one Redis hash. Extending an incident is atomic: outside a batch
it is one optimistic transaction (``WATCH`` the hash, read, ``MULTI``/``EXEC``, again if
another worker wrote in between); a batch keeps what it added to each incident (count,
last time, evidence) and folds it into the incident as it stands in Redis, in the same
transaction that writes the windows back and drops their locks. Two workers extending
one incident at the same instant thus both count.

A store made for a job (``job=``) makes each chunk idempotent: the transaction that
writes a chunk's windows and incidents back also sets a marker for (job, chunk) holding
the alerts the chunk opened and closed. A retried job that reads the same chunk again
finds the marker, counts nothing and takes those alerts back, so its events are counted
once and its alerts still raised. A chunk that fails half-way writes nothing back.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, Protocol, TypeVar

import redis

from secops.anomaly.store import (
    ChunkMark,
    Fired,
    Incident,
    RateView,
    ewma_add,
    extend,
    step_aggregate,
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
_TAKE_MANY = lua_script("""
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('EXISTS', KEYS[n + i]) == 1 then return {0} end
end
local out = {1}
for i = 1, n do
  redis.call('SET', KEYS[n + i], ARGV[1], 'PX', ARGV[2])
  out[i + 1] = redis.call('GET', KEYS[i])
end
return out
""")
_PUT_MANY = lua_script("""
local d = tonumber(ARGV[2])
for i = 1, d do
  local v = ARGV[2 + d + i]
  if v == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], v, 'EX', ARGV[2 + i]) end
end
for i = d + 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
""")
BATCH_LOCK_MS = 30_000
INCIDENTS = PREFIX + "incidents"
MARK_TTL = 7 * 86400   # longer than a job keeps retrying
T = TypeVar("T")


class RateHistory(Protocol):
    """Where rate windows outlive their Redis keys (the database, for the platform)."""

    def load(self, key: str) -> list[Any] | None: ...

    def keep(self, key: str, state: list[Any]) -> None: ...


def _incident(raw: Any) -> Incident:
    return Incident(**json.loads(raw))


def _dump(incident: Incident) -> str:
    return json.dumps(asdict(incident))


def _name(kind: str, key: str) -> str:
    if len(key) > 200:   # entities come from log lines: keep keys short
        key = key[:120] + "#" + hashlib.sha256(key.encode()).hexdigest()
    return f"{PREFIX}{kind}:{key}"


class RedisWindowStore:
    """:class:`secops.anomaly.store.WindowStore` on Redis."""

    def __init__(self, client: redis.Redis, *, job: str | None = None,
                 history: RateHistory | None = None) -> None:
        self.client = client
        self.job = job
        self.history = history
        self._cache: dict[str, Any] | None = None        # windows held by a batch
        self._dirty: dict[str, float] = {}               # key -> ttl, to write back
        self._inc: dict[str, Incident | None] = {}       # incidents read or written by a batch
        self._inc_dirty: set[str] = set()                # put or popped by a batch
        self._inc_ext: dict[str, tuple[int, float, list[str], int]] = {}  # added by a batch
        self._learnt: dict[str, set[str]] = {}           # first-seen values of a batch
        self._later: dict[str, bytes] = {}               # other keys a batch writes back

    @contextmanager
    def batch(self, keys: set[str], chunk: str | None = None) -> Iterator[ChunkMark]:
        """Hold the windows of ``keys`` (all or none, so two workers never deadlock) for a
        chunk of events: one round trip takes them, one writes them back (with the chunk's
        marker when the store belongs to a job)."""
        names = sorted(keys)
        windows = [_name("w", k) for k in names]
        locks = [w + ":lock" for w in windows]
        token = secrets.token_hex(8)
        deadline = time.monotonic() + WAIT_SECONDS * 6
        delay = 0.002
        while True:
            got = _TAKE_MANY(keys=windows + locks, args=[token, BATCH_LOCK_MS, len(names)],
                             client=self.client)
            if got[0]:
                break
            if time.monotonic() > deadline:
                raise Unavailable("anomaly windows stayed locked too long")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        self._cache = {k: json.loads(v) if v else None for k, v in zip(names, got[1:], strict=True)}
        self._forget()
        marker = None if self.job is None or chunk is None else _name("done", f"{self.job}:{chunk}")
        mark = ChunkMark()
        done = self.client.get(marker) if marker is not None else None
        if done is not None:   # counted by an earlier run of this job
            mark.done, mark.produced = True, json.loads(done)
        try:
            yield mark
        except BaseException:   # nothing half-counted: the windows stay as they were
            _PUT_MANY(keys=locks, args=[token, 0], client=self.client)
            raise
        else:
            if mark.done:
                _PUT_MANY(keys=locks, args=[token, 0], client=self.client)
            else:
                self._write_back(locks, token, marker, mark)
        finally:
            self._cache = None
            self._forget()

    def _forget(self) -> None:
        """Drop a batch's bookkeeping: dirty windows, incidents, learnt values, later writes."""
        self._dirty, self._inc, self._inc_dirty, self._inc_ext = {}, {}, set(), {}
        self._learnt, self._later = {}, {}

    def _write_back(self, locks: list[str], token: str, marker: str | None = None,
                    mark: ChunkMark | None = None) -> None:
        """One transaction: the windows, the incidents (what this batch added folded into
        them as they stand now) and the locks dropped."""
        assert self._cache is not None
        dirty = sorted(self._dirty)
        values = ["" if self._cache[k] is None else json.dumps(self._cache[k], separators=(",", ":"))
                  for k in dirty]
        ttls = [int(max(MIN_TTL, self._dirty[k] * 3)) for k in dirty]
        put = {k: self._inc[k] for k in self._inc_dirty}
        added = sorted(self._inc_ext.items())
        cached = {k: self._inc[k] for k, _ in added}
        learnt_values = sorted((k, sorted(v)) for k, v in self._learnt.items() if v)
        later = sorted(self._later.items())

        def work(pipe: Any) -> None:
            now = pipe.hmget(INCIDENTS, [k for k, _ in added]) if added else []
            pipe.multi()
            _PUT_MANY(keys=[_name("w", k) for k in dirty] + locks,
                      args=[token, len(dirty), *ttls, *values], client=pipe)
            for key, incident in put.items():
                if incident is None:
                    pipe.hdel(INCIDENTS, key)
                else:
                    pipe.hset(INCIDENTS, key, _dump(incident))
            for (key, (count, end, evidence, limit)), raw in zip(added, now, strict=True):
                current: Incident | None = cached[key]   # closed by another worker meanwhile
                if raw:
                    current = _incident(raw)
                    extend(current, count, end, evidence, limit)
                if current is not None:
                    pipe.hset(INCIDENTS, key, _dump(current))
            for name, learnt in learnt_values:
                pipe.sadd(name, *learnt)
            for name, value in later:
                pipe.set(name, value)
            if marker is not None and mark is not None:
                pipe.set(marker, json.dumps(mark.produced), ex=MARK_TTL)

        self.client.transaction(work, INCIDENTS)

    def _update(self, key: str, ttl: float, step: Callable[[Any], tuple[Any, T]]) -> T:
        if self._cache is not None and key in self._cache:
            state, result = step(self._cache[key])
            self._cache[key] = state
            self._dirty[key] = ttl
            return result
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

    def aggregate(self, key: str, ts: float, item: str, value: Any, window: float, keep: int,
                  agg: str, entity: str, kind: str) -> list[Any] | None:
        """A tumbling window; the finished one comes back when a later window's event
        arrives (a group's last window is judged by its group's next event)."""
        return self._update(key, window * 2, lambda s: step_aggregate(
            s, ts, item, value, window, keep, agg, entity, kind))

    def _recall(self, key: str) -> Any:
        """A rate window Redis no longer holds, from the rolling history (None: none kept)."""
        return self.history.load(key) if self.history is not None else None

    def _note(self, key: str, state: Any) -> None:
        if self.history is not None and state is not None:
            self.history.keep(key, state)

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView:
        cache = self._cache
        if cache is not None and key in cache and population in cache:
            if cache[population] is None:
                cache[population] = self._recall(population) or [0.0, 0.0, 0]
            if cache[key] is None:
                cache[key] = self._recall(key)
            pop_state = cache[population]
            state, view = step_rate(cache[key], pop_state, ts, amount, interval, alpha)
            cache[key] = state
            self._dirty[key] = self._dirty[population] = interval * 48
            self._note(key, state)
            self._note(population, pop_state)
            return view
        raw = self.client.get(_name("w", population))
        pop = json.loads(raw) if raw else (self._recall(population) or [0.0, 0.0, 0])
        closed: list[float] = []

        def step(state: Any) -> tuple[Any, RateView]:
            if state is None:
                state = self._recall(key)
            if state is not None and int(ts // interval) > state[0]:
                closed.append(state[1])
            new, view = step_rate(state, list(pop), ts, amount, interval, alpha)
            self._note(key, new)
            return new, view

        view = self._update(key, interval * 48, step)
        if closed or (not raw and self.history is not None):   # fold the finished interval
            def fold(p: Any) -> tuple[Any, None]:
                p = p or list(pop)
                if closed:
                    ewma_add(p, closed[0], alpha)
                self._note(population, p)
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
        learnt = self._learnt.get(name)
        if learnt is not None and value in learnt:
            return False
        pipe = self.client.pipeline(transaction=True)
        pipe.exists(name)
        pipe.sismember(name, value)
        exists, member = pipe.execute()
        if not exists:
            return None
        if member:
            return False
        if self._cache is not None:   # learnt with the chunk: a failed chunk learns nothing
            self._learnt.setdefault(name, set()).add(value)
            return True
        return bool(self.client.sadd(name, value))

    def put_later(self, name: str, value: bytes) -> bool:
        """Within a batch, keep ``value`` for Redis key ``name`` to be written with the
        chunk (False outside a batch: the caller writes it)."""
        if self._cache is None:
            return False
        self._later[name] = value
        return True

    def remember(self, key: str, values: Iterable[str]) -> None:
        items = list(values)
        if items:
            self.client.sadd(_name("seen", key), *items)

    def incident(self, key: str) -> Incident | None:
        if self._cache is not None and key in self._inc:
            return self._inc[key]
        raw = self.client.hget(INCIDENTS, key)
        found = _incident(raw) if raw else None
        if self._cache is not None:
            self._inc[key] = found
        return found

    def put_incident(self, key: str, incident: Incident) -> None:
        if self._cache is not None:
            self._inc[key] = incident
            self._inc_dirty.add(key)
            self._inc_ext.pop(key, None)
            return
        self.client.hset(INCIDENTS, key, _dump(incident))

    def extend_incident(self, key: str, ts: float, item: str, evidence_limit: int) -> None:
        if self._cache is not None:
            found = self.incident(key)
            if found is None:
                return
            extend(found, 1, ts, [item], evidence_limit)
            if key not in self._inc_dirty:   # opened before this batch: keep the addition
                count, end, evidence, _ = self._inc_ext.get(key, (0, ts, [], evidence_limit))
                self._inc_ext[key] = (count + 1, max(end, ts), (evidence + [item])[:evidence_limit],
                                      evidence_limit)
            return

        def work(pipe: Any) -> None:
            raw = pipe.hget(INCIDENTS, key)
            if not raw:
                return
            current = _incident(raw)
            extend(current, 1, ts, [item], evidence_limit)
            pipe.multi()
            pipe.hset(INCIDENTS, key, _dump(current))

        self.client.transaction(work, INCIDENTS)

    def pop_incident(self, key: str) -> Incident | None:
        if self._cache is not None:
            found = self.incident(key)
            self._inc[key] = None
            self._inc_dirty.add(key)
            self._inc_ext.pop(key, None)
            return found
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(INCIDENTS, key)
        pipe.hdel(INCIDENTS, key)
        raw, removed = pipe.execute()
        return _incident(raw) if raw and removed else None

    def open_incidents(self) -> Iterator[tuple[str, Incident]]:
        found: dict[str, Incident] = {}
        for key, raw in self.client.hscan_iter(INCIDENTS):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found[name] = _incident(raw)
        if self._cache is not None:   # what this batch changed and has not written yet
            for name, incident in self._inc.items():
                if incident is None:
                    found.pop(name, None)
                else:
                    found[name] = incident
        return iter(list(found.items()))

    def expire(self, now: float) -> None:
        """Windows expire through their Redis TTLs."""
