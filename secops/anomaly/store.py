"""Window state of the detector behind a small protocol, and its in-memory implementation.

Every bucket operation records one hit for a key (``rule id`` + entity) and says whether
the bucket fired; when it fires it hands back the hits it held (count, first time,
evidence lines) and starts empty again. State is bounded: a counter keeps at most
``threshold + 1`` hits, a distinct bucket at most ``threshold + 1`` values, a
conditional bucket fixed time slots plus the distinct values its conditions need, and
:meth:`MemoryStore.expire` forgets keys idle for longer than their window. The
platform implements the same protocol on Redis so that workers share windows.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SLOTS = 20          # time slots of a conditional bucket's window
DISTINCT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class Fired:
    count: int
    first: float
    items: list[str]


@dataclass(frozen=True, slots=True)
class RateView:
    """An entity's running interval next to its baseline and the population's."""

    current: float      # total so far in the current interval
    events: int         # events so far in the current interval
    first: float        # time of the interval's first event
    mean: float         # the entity's EWMA of past interval totals
    sd: float
    history: int        # past intervals behind the entity's baseline
    pop_mean: float     # the same over every entity of the rule (active intervals)
    pop_sd: float
    pop_history: int


class _Ewma:
    __slots__ = ("mean", "var", "n")

    def __init__(self) -> None:
        self.mean = self.var = 0.0
        self.n = 0

    def add(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            diff = x - self.mean
            incr = alpha * diff
            self.mean += incr
            self.var = (1 - alpha) * (self.var + diff * incr)
        self.n += 1

    def decay(self, k: int, alpha: float) -> None:
        """``k`` empty intervals."""
        for _ in range(min(k, 64)):
            self.add(0.0, alpha)
        self.n += max(0, k - 64)


@dataclass(slots=True)
class Incident:
    rule: str
    entity: str
    entity_type: str
    start: float
    end: float
    count: int
    evidence: list[str] = field(default_factory=list)


class WindowStore(Protocol):
    def counter(self, key: str, ts: float, item: str, window: float,
                threshold: int) -> Fired | None: ...

    def distinct(self, key: str, ts: float, value: str, item: str, window: float,
                 threshold: int) -> Fired | None: ...

    def leaky(self, key: str, ts: float, item: str, capacity: float, leak: float,
              keep: int) -> Fired | None: ...

    def tally(self, key: str, ts: float, item: str, window: float, success: bool | None,
              values: Mapping[str, str | None], caps: Mapping[str, int], keep: int,
              check: Callable[[dict[str, float]], bool]) -> Fired | None: ...

    def first_seen(self, key: str, value: str) -> bool | None: ...

    def temporal(self, key: str, ts: float, item: str, matched: Iterable[int], parts: int,
                 window: float, ordered: bool, keep: int) -> Fired | None: ...

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView: ...

    def hours(self, key: str, hour: int) -> tuple[int, int]: ...

    def remember(self, key: str, values: Iterable[str]) -> None: ...

    def incident(self, key: str) -> Incident | None: ...

    def put_incident(self, key: str, incident: Incident) -> None: ...

    def pop_incident(self, key: str) -> Incident | None: ...

    def open_incidents(self) -> Iterator[tuple[str, Incident]]: ...

    def expire(self, now: float) -> None: ...


class _Tally:
    __slots__ = ("slots", "count", "failures", "successes", "values", "items")

    def __init__(self, keep: int) -> None:
        self.slots: deque[list[float]] = deque()   # [start, count, failures, successes, first]
        self.count = self.failures = self.successes = 0
        self.values: dict[str, OrderedDict[str, float]] = {}
        self.items: deque[str] = deque(maxlen=keep)


class MemoryStore:
    """Windows in this process's memory (the local command, tests)."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        self._touched: dict[str, tuple[float, float]] = {}   # key -> (last ts, ttl)
        self._seen: dict[str, set[str]] = {}
        self._seen_hours: dict[str, tuple[int, int]] = {}
        self._incidents: dict[str, Incident] = {}

    def _touch(self, key: str, ts: float, ttl: float) -> None:
        self._touched[key] = (ts, ttl)

    def counter(self, key: str, ts: float, item: str, window: float,
                threshold: int) -> Fired | None:
        hits: deque[tuple[float, str]] | None = self._state.get(key)
        if hits is None:
            hits = self._state[key] = deque(maxlen=threshold + 1)
        hits.append((ts, item))
        while hits and hits[0][0] < ts - window:
            hits.popleft()
        self._touch(key, ts, window)
        if len(hits) > threshold:
            del self._state[key]
            return Fired(len(hits), hits[0][0], [i for _, i in hits])
        return None

    def distinct(self, key: str, ts: float, value: str, item: str, window: float,
                 threshold: int) -> Fired | None:
        seen: OrderedDict[str, tuple[float, str]] | None = self._state.get(key)
        if seen is None:
            seen = self._state[key] = OrderedDict()
        seen[value] = (ts, item)
        seen.move_to_end(value)
        while seen and next(iter(seen.values()))[0] < ts - window:
            seen.popitem(last=False)
        while len(seen) > threshold + 1:
            seen.popitem(last=False)
        self._touch(key, ts, window)
        if len(seen) > threshold:
            del self._state[key]
            first = min(t for t, _ in seen.values())
            return Fired(len(seen), first, [i for _, i in seen.values()])
        return None

    def leaky(self, key: str, ts: float, item: str, capacity: float, leak: float,
              keep: int) -> Fired | None:
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = [0.0, ts, 0, ts, deque(maxlen=keep)]
        level, last, n, first, items = state
        level = max(0.0, level - (ts - last) / leak)
        if level == 0.0:
            n, first = 0, ts
            items.clear()
        level += 1.0
        n += 1
        items.append(item)
        state[:4] = [level, ts, n, first]
        self._touch(key, ts, capacity * leak)
        if level > capacity:
            del self._state[key]
            return Fired(n, first, list(items))
        return None

    def tally(self, key: str, ts: float, item: str, window: float, success: bool | None,
              values: Mapping[str, str | None], caps: Mapping[str, int], keep: int,
              check: Callable[[dict[str, float]], bool]) -> Fired | None:
        t: _Tally | None = self._state.get(key)
        if t is None:
            t = self._state[key] = _Tally(keep)
        width = window / SLOTS
        start = ts - ts % width
        if not t.slots or t.slots[-1][0] < start:
            t.slots.append([start, 0, 0, 0, ts])
        slot = t.slots[-1]
        slot[1] += 1
        t.count += 1
        if success is False:
            slot[2] += 1
            t.failures += 1
        elif success is True:
            slot[3] += 1
            t.successes += 1
        while t.slots and t.slots[0][0] + width <= ts - window:
            old = t.slots.popleft()
            t.count -= int(old[1])
            t.failures -= int(old[2])
            t.successes -= int(old[3])
        metrics: dict[str, float] = {
            "count": t.count, "failures": t.failures, "successes": t.successes,
            "success_rate": t.successes / (t.successes + t.failures)
            if t.successes + t.failures else 1.0}
        for name, value in values.items():
            seen = t.values.setdefault(name, OrderedDict())
            if value is not None:
                seen[value] = ts
                seen.move_to_end(value)
            while seen and next(iter(seen.values())) < ts - window:
                seen.popitem(last=False)
            cap = caps.get(name, DISTINCT_CAP)
            while len(seen) > cap:
                seen.popitem(last=False)
            metrics["distinct_" + name] = len(seen)
        t.items.append(item)
        self._touch(key, ts, window)
        if check(metrics):   # the window is kept: the incident lasts while this holds
            return Fired(t.count, t.slots[0][4] if t.slots else ts, list(t.items))
        return None

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView:
        """Add ``amount`` to the entity's current interval and report it with its baselines."""
        state = self._state.get(key)
        index = int(ts // interval)
        if state is None:
            state = self._state[key] = [index, 0.0, 0, ts, _Ewma()]
        pop: _Ewma | None = self._state.get(population)
        if pop is None:
            pop = self._state[population] = _Ewma()
        if index > state[0]:   # close the finished interval, and the empty ones after it
            state[4].add(state[1], alpha)
            pop.add(state[1], alpha)
            state[4].decay(index - state[0] - 1, alpha)
            state[:4] = [index, 0.0, 0, ts]
            self._touch(population, ts, interval * 48)
            self._touch(key, ts, interval * 48)
        elif state[2] == 0:
            self._touch(key, ts, interval * 48)
        state[1] += amount
        state[2] += 1
        ewma = state[4]
        return RateView(state[1], state[2], state[3], ewma.mean, ewma.var ** 0.5, ewma.n,
                        pop.mean, pop.var ** 0.5, pop.n)

    def temporal(self, key: str, ts: float, item: str, matched: Iterable[int], parts: int,
                 window: float, ordered: bool, keep: int) -> Fired | None:
        """Fires when every one of ``parts`` rules matched within ``window`` (in their order
        when ``ordered``); ``matched`` are the indexes of the rules this event matched."""
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = [[None] * parts, deque()]
        last, hits = state[0], state[1]
        for i in matched:
            if ordered and i > 0 and (last[i - 1] is None or last[i - 1] < ts - window):
                continue   # out of order: the earlier step has not happened (recently)
            last[i] = ts
        hits.append((ts, item))
        while hits[0][0] < ts - window:
            hits.popleft()
        self._touch(key, ts, window)
        if all(t is not None and t >= ts - window for t in last):
            del self._state[key]
            start = min(last)
            within = [i for t, i in hits if t >= start]
            return Fired(len(within), start, within[-keep:])
        return None

    def hours(self, key: str, hour: int) -> tuple[int, int]:
        """The entity's mask of login hours and login count before this one (then learnt)."""
        state = self._seen_hours.get(key, (0, 0))
        self._seen_hours[key] = (state[0] | (1 << hour), state[1] + 1)
        return state

    def first_seen(self, key: str, value: str) -> bool | None:
        """True when ``value`` is new for a key that has a baseline (it is then learnt);
        False when already seen; None when the key has no baseline."""
        known = self._seen.get(key)
        if known is None:
            return None
        if value in known:
            return False
        known.add(value)
        return True

    def remember(self, key: str, values: Iterable[str]) -> None:
        self._seen.setdefault(key, set()).update(values)

    def incident(self, key: str) -> Incident | None:
        return self._incidents.get(key)

    def put_incident(self, key: str, incident: Incident) -> None:
        self._incidents[key] = incident

    def pop_incident(self, key: str) -> Incident | None:
        return self._incidents.pop(key, None)

    def open_incidents(self) -> Iterator[tuple[str, Incident]]:
        return iter(list(self._incidents.items()))

    def expire(self, now: float) -> None:
        stale = [k for k, (last, ttl) in self._touched.items() if last + ttl < now]
        for key in stale:
            del self._touched[key]
            self._state.pop(key, None)

    def __len__(self) -> int:
        return len(self._state)
