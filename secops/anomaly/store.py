"""Window state of the detector behind a small protocol, and its in-memory implementation.

Every bucket operation records one hit for a key (``rule id`` + entity) and says whether
the bucket fired; when it fires it hands back the hits it held (count, first time,
evidence lines) and starts empty again. State is bounded: a counter keeps at most
``threshold + 1`` hits, a distinct bucket at most ``threshold + 1`` values, a
conditional bucket fixed time slots plus the distinct values its conditions need, and
:meth:`MemoryStore.expire` forgets keys idle for longer than their window. The
platform implements the same protocol on Redis so that workers share windows.

Every window's state is plain JSON data (lists, dicts, numbers, strings) and the bucket
algorithms are the functions ``step_*`` over it, so another store (Redis) keeps the state
elsewhere and runs the very same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SLOTS = 20          # time slots of a conditional bucket's window
DISTINCT_CAP = 10_000
SCAN_FRACTION = 0.25   # of a window's time to live: how often its group is read to expire


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


@dataclass(slots=True)
class Incident:
    rule: str
    entity: str
    entity_type: str
    start: float
    end: float
    count: int
    evidence: list[str] = field(default_factory=list)


def extend(incident: Incident, count: int, end: float, evidence: Iterable[str],
           evidence_limit: int) -> None:
    """Fold ``count`` more events, ending at ``end``, into ``incident``."""
    incident.count += count
    incident.end = max(incident.end, end)
    for item in evidence:
        if len(incident.evidence) >= evidence_limit:
            break
        incident.evidence.append(item)


@dataclass(slots=True)
class ChunkMark:
    """A chunk of events fed through a shared store's batch. ``done``: a run of the same
    job already counted this chunk (a retry), ``produced`` is what that run got from it
    (alerts opened and closed, as plain data); else the detector fills ``produced``."""
    done: bool = False
    produced: dict[str, Any] = field(default_factory=dict)


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

    def aggregate(self, key: str, ts: float, item: str, value: Any, window: float, keep: int,
                  agg: str, entity: str, kind: str) -> list[Any] | None: ...

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView: ...

    def hours(self, key: str, hour: int) -> tuple[int, int]: ...

    def remember(self, key: str, values: Iterable[str]) -> None: ...

    def incident(self, key: str) -> Incident | None: ...

    def put_incident(self, key: str, incident: Incident) -> None: ...

    def extend_incident(self, key: str, ts: float, item: str, evidence_limit: int) -> None:
        """Count one more event into the open incident of ``key`` (atomic in a shared store)."""
        ...

    def pop_incident(self, key: str) -> Incident | None: ...

    def open_incidents(self) -> Iterator[tuple[str, Incident]]: ...

    def expire(self, now: float) -> None: ...


def ewma_add(e: list[float], x: float, alpha: float) -> None:
    """Fold ``x`` into an EWMA state ``[mean, variance, n]``."""
    if e[2] == 0:
        e[0], e[1] = x, 0.0
    else:
        diff = x - e[0]
        incr = alpha * diff
        e[0] += incr
        e[1] = (1 - alpha) * (e[1] + diff * incr)
    e[2] += 1


def ewma_decay(e: list[float], k: int, alpha: float) -> None:
    """``k`` empty intervals."""
    for _ in range(min(k, 64)):
        ewma_add(e, 0.0, alpha)
    e[2] += max(0, k - 64)


def step_counter(state: list[Any] | None, ts: float, item: str, window: float,
                 threshold: int) -> tuple[list[Any] | None, Fired | None]:
    hits = state if state is not None else []
    hits.append([ts, item])
    if len(hits) > threshold + 1:
        del hits[: len(hits) - threshold - 1]
    while hits and hits[0][0] < ts - window:
        hits.pop(0)
    if len(hits) > threshold:
        return None, Fired(len(hits), hits[0][0], [i for _, i in hits])
    return hits, None


def step_distinct(state: dict[str, Any] | None, ts: float, value: str, item: str,
                  window: float, threshold: int) -> tuple[dict[str, Any] | None, Fired | None]:
    seen = state if state is not None else {}
    seen.pop(value, None)
    seen[value] = [ts, item]
    while seen:
        oldest = next(iter(seen))
        if seen[oldest][0] >= ts - window and len(seen) <= threshold + 1:
            break
        del seen[oldest]
    if len(seen) > threshold:
        first = min(t for t, _ in seen.values())
        return None, Fired(len(seen), first, [i for _, i in seen.values()])
    return seen, None


def step_leaky(state: list[Any] | None, ts: float, item: str, capacity: float, leak: float,
               keep: int) -> tuple[list[Any] | None, Fired | None]:
    fresh: list[Any] = [0.0, ts, 0, ts, []]
    level, last, n, first, items = state if state is not None else fresh
    level = max(0.0, level - (ts - last) / leak)
    if level == 0.0:
        n, first, items = 0, ts, []
    level += 1.0
    n += 1
    items.append(item)
    del items[:-keep]
    if level > capacity:
        return None, Fired(n, first, items)
    return [level, ts, n, first, items], None


def step_tally(state: dict[str, Any] | None, ts: float, item: str, window: float,
               success: bool | None, values: Mapping[str, str | None], caps: Mapping[str, int],
               keep: int, check: Callable[[dict[str, float]], bool]
               ) -> tuple[dict[str, Any], Fired | None]:
    """A conditional bucket; its window is kept when it fires (the incident lasts while the
    conditions hold)."""
    t: dict[str, Any] = state if state is not None else {
        "slots": [], "count": 0, "failures": 0, "successes": 0, "values": {}, "items": []}
    slots = t["slots"]   # [start, count, failures, successes, first]
    width = window / SLOTS
    start = ts - ts % width
    if not slots or slots[-1][0] < start:
        slots.append([start, 0, 0, 0, ts])
    slot = slots[-1]
    slot[1] += 1
    count = t["count"] + 1
    bad, ok = t["failures"], t["successes"]
    if success is False:
        slot[2] += 1
        bad += 1
    elif success is True:
        slot[3] += 1
        ok += 1
    edge = ts - window
    while slots[0][0] + width <= edge:
        old = slots.pop(0)
        count -= old[1]
        bad -= old[2]
        ok -= old[3]
        if not slots:
            break
    t["count"], t["failures"], t["successes"] = count, bad, ok
    metrics: dict[str, float] = {"count": count, "failures": bad, "successes": ok,
                                 "success_rate": ok / (ok + bad) if ok + bad else 1.0}
    known = t["values"]
    for name, value in values.items():
        seen = known.get(name)
        if seen is None:
            seen = known[name] = {}
        if value is not None:
            if value in seen:
                del seen[value]
            seen[value] = ts
        cap = caps.get(name, DISTINCT_CAP)
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= edge and len(seen) <= cap:
                break
            del seen[oldest]
        metrics["distinct_" + name] = len(seen)
    items = t["items"]
    items.append(item)
    if len(items) > keep:
        del items[:-keep]
    if check(metrics):
        return t, Fired(count, slots[0][4] if slots else ts, list(items))
    return t, None


NO_NEEDS = (0, 0, 0)
PENDING_CAP = 256   # events a conditional window keeps before it becomes the window


def step_pending(state: list[Any] | None, ts: float, success: bool | None, item: str,
                 values: Any, window: float, keep: int, needs: tuple[int, int, int]
                 ) -> tuple[list[Any], bool]:
    """A conditional window kept lazily: while its conditions cannot hold, the events
    themselves instead of the window. ``needs`` are the least numbers of events, failures
    and successes the window must hold for every condition to hold (see
    ``Conditions.needs``). The state is one list: the failures and the successes among
    the events kept, then the events, ``(time, success, line, values)``: those recent
    enough to count in a window and at least the last ``keep`` (the evidence). Returns
    the state with the event added, and whether the window may now meet the conditions
    or holds ``PENDING_CAP`` events (memory stays bounded): then replaying the events in
    order through :func:`step_tally` gives the very window the bucket would hold had it
    taken every event."""
    if state is None:
        state = [0, 0]
    state.append((ts, success, item, values))
    if success is False:
        state[0] += 1
    elif success is True:
        state[1] += 1
    held = len(state) - 2
    if held >= PENDING_CAP:   # a busy window: the window itself costs less memory
        return state, True
    need, need_bad, need_ok = needs
    cutoff = ts - window - window / SLOTS   # (a slot's start, at the earliest)
    if held >= need and state[0] >= need_bad and state[1] >= need_ok:
        count = bad = ok = 0
        for i in range(2, len(state)):
            p_ts, p_success = state[i][0], state[i][1]
            if p_ts >= cutoff:
                count += 1
                if p_success is False:
                    bad += 1
                elif p_success is True:
                    ok += 1
        if count >= need and bad >= need_bad and ok >= need_ok:
            return state, True
    while held > keep and state[2][0] < cutoff:   # out of every window, and its line
        old = state.pop(2)[1]                      # past the evidence kept
        held -= 1
        if old is False:
            state[0] -= 1
        elif old is True:
            state[1] -= 1
    return state, False


def replay_pending(state: list[Any], window: float, caps: Mapping[str, int], keep: int,
                   check: Callable[[dict[str, float]], bool],
                   names: tuple[str, ...] | None = None) -> dict[str, Any] | None:
    """The window of a waiting state (:func:`step_pending` said it is ready) from its
    events but the last, which the caller steps itself. ``names``: the events' values are
    a tuple of the values of these fields, not a mapping."""
    t = None
    for p_ts, p_success, p_item, p_values in state[2:-1]:
        values = p_values if names is None else dict(zip(names, p_values, strict=True))
        t, _ = step_tally(t, p_ts, p_item, window, p_success, values, caps, keep, check)
    return t


def step_rate(state: list[Any] | None, population: list[float], ts: float, amount: float,
              interval: float, alpha: float) -> tuple[list[Any], RateView]:
    """An interval total against the entity's EWMA (``state``) and everyone's (``population``)."""
    index = int(ts // interval)
    if state is None:
        state = [index, 0.0, 0, ts, [0.0, 0.0, 0]]
    if index > state[0]:   # close the finished interval, and the empty ones after it
        ewma_add(state[4], state[1], alpha)
        ewma_add(population, state[1], alpha)
        ewma_decay(state[4], index - state[0] - 1, alpha)
        state[:4] = [index, 0.0, 0, ts]
    state[1] += amount
    state[2] += 1
    own = state[4]
    return state, RateView(state[1], state[2], state[3], own[0], max(own[1], 0.0) ** 0.5,
                           int(own[2]), population[0], max(population[1], 0.0) ** 0.5,
                           int(population[2]))


def step_temporal(state: list[Any] | None, ts: float, item: str, matched: Iterable[int],
                  parts: int, window: float, ordered: bool,
                  keep: int) -> tuple[list[Any] | None, Fired | None]:
    """Fires when every one of ``parts`` rules matched within ``window`` (in their order when
    ``ordered``); ``matched`` are the indexes of the rules this event matched."""
    fresh: list[Any] = [[None] * parts, []]
    last, hits = state if state is not None else fresh
    for i in matched:
        if ordered and i > 0 and (last[i - 1] is None or last[i - 1] < ts - window):
            continue   # out of order: the earlier step has not happened (recently)
        last[i] = ts
    hits.append([ts, item])
    while hits[0][0] < ts - window:
        hits.pop(0)
    if all(t is not None and t >= ts - window for t in last):
        start = min(last)
        within = [i for t, i in hits if t >= start]
        return None, Fired(len(within), start, within[-keep:])
    return [last, hits], None


VALUES_CAP = 100_000   # numbers kept per window for a percentile


def step_aggregate(state: list[Any] | None, ts: float, item: str, value: Any, window: float,
                   keep: int, agg: str, entity: str, kind: str
                   ) -> tuple[list[Any], list[Any] | None]:
    """A tumbling window (``window``-aligned) of one group: count, distinct values, sum and
    the numbers of a field. When an event falls in a later window the finished one is
    handed back (``[index, count, first, last, total, n, values, distinct, items, entity,
    kind]``) to be judged, and a new one starts."""
    index = int(ts // window)
    closed = None
    if state is not None and index > state[0]:
        closed, state = state, None
    if state is None:
        state = [index, 0, ts, ts, 0.0, 0, [], {}, [], entity, kind]
    state[1] += 1
    state[2], state[3] = min(state[2], ts), max(state[3], ts)
    if value is not None:
        if agg == "distinct":
            if len(state[7]) < DISTINCT_CAP:
                state[7][str(value)] = 1
        elif isinstance(value, int | float) and not isinstance(value, bool):
            state[4] += value
            state[5] += 1
            if agg == "percentile" and len(state[6]) < VALUES_CAP:
                state[6].append(value)
    if len(state[8]) < keep:
        state[8].append(item)
    return state, closed


def aggregate_metric(summary: list[Any], agg: str, percentile: float) -> float | None:
    """The value a finished window is judged on (None: no number to judge)."""
    if agg == "count":
        return float(summary[1])
    if agg == "distinct":
        return float(len(summary[7]))
    if summary[5] == 0:
        return None
    if agg == "sum":
        return float(summary[4])
    if agg == "avg":
        return float(summary[4]) / summary[5]
    values = sorted(summary[6])   # linear between the closest ranks (NumPy's default)
    pos = (len(values) - 1) * percentile / 100
    low = int(pos)
    high = min(low + 1, len(values) - 1)
    return float(values[low] + (values[high] - values[low]) * (pos - low))


class MemoryStore:
    """Windows in this process's memory (the local command, tests)."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}
        # ttl -> {key: time of its last touch}; a touch only sets the time (the key keeps
        # its place), and :meth:`expire` reads a whole group every quarter of its ttl
        self._touched: dict[float, dict[str, float]] = {}
        self._scanned: dict[float, float] = {}   # ttl -> log time of the group's last read
        self._seen: dict[str, set[str]] = {}
        self._seen_hours: dict[str, tuple[int, int]] = {}
        self._incidents: dict[str, Incident] = {}
        self._windows: dict[str, float] = {}   # tumbling (aggregate) windows: key -> length

    def _keep(self, key: str, state: Any, ts: float, ttl: float) -> None:
        if state is None:
            self._state.pop(key, None)
        else:
            self._state[key] = state
        self._touch(key, ts, ttl)

    def _touch(self, key: str, ts: float, ttl: float) -> None:
        group = self._touched.get(ttl)
        if group is None:
            group = self._touched[ttl] = {}
        group[key] = ts

    def touched(self, ttl: float) -> dict[str, float]:
        """The group of windows of time to live ``ttl``, ``{key: time of its last touch}``:
        a caller that keeps windows itself records a touch as ``group[key] = ts``."""
        group = self._touched.get(ttl)
        if group is None:
            group = self._touched[ttl] = {}
        return group

    def counter(self, key: str, ts: float, item: str, window: float,
                threshold: int) -> Fired | None:
        state, fired = step_counter(self._state.get(key), ts, item, window, threshold)
        self._keep(key, state, ts, window)
        return fired

    def distinct(self, key: str, ts: float, value: str, item: str, window: float,
                 threshold: int) -> Fired | None:
        state, fired = step_distinct(self._state.get(key), ts, value, item, window, threshold)
        self._keep(key, state, ts, window)
        return fired

    def leaky(self, key: str, ts: float, item: str, capacity: float, leak: float,
              keep: int) -> Fired | None:
        state, fired = step_leaky(self._state.get(key), ts, item, capacity, leak, keep)
        self._keep(key, state, ts, capacity * leak)
        return fired

    def tally(self, key: str, ts: float, item: str, window: float, success: bool | None,
              values: Mapping[str, str | None], caps: Mapping[str, int], keep: int,
              check: Callable[[dict[str, float]], bool]) -> Fired | None:
        state = self._state.get(key)
        needs = getattr(check, "needs", NO_NEEDS)
        if needs != NO_NEEDS and (state is None or type(state) is list):
            state, ready = step_pending(state, ts, success, item, values, window, keep,
                                        needs)
            if not ready:
                self._keep(key, state, ts, window)
                return None
            state = replay_pending(state, window, caps, keep, check)
        state, fired = step_tally(state, ts, item, window, success, values, caps, keep, check)
        self._keep(key, state, ts, window)
        return fired

    def rate(self, key: str, population: str, ts: float, amount: float, interval: float,
             alpha: float) -> RateView:
        pop = self._state.get(population)
        if pop is None:
            pop = self._state[population] = [0.0, 0.0, 0]
        state, view = step_rate(self._state.get(key), pop, ts, amount, interval, alpha)
        self._keep(key, state, ts, interval * 48)
        self._touch(population, ts, interval * 48)
        return view

    def temporal(self, key: str, ts: float, item: str, matched: Iterable[int], parts: int,
                 window: float, ordered: bool, keep: int) -> Fired | None:
        state, fired = step_temporal(self._state.get(key), ts, item, matched, parts, window,
                                     ordered, keep)
        self._keep(key, state, ts, window)
        return fired

    def aggregate(self, key: str, ts: float, item: str, value: Any, window: float, keep: int,
                  agg: str, entity: str, kind: str) -> list[Any] | None:
        state, closed = step_aggregate(self._state.get(key), ts, item, value, window, keep,
                                       agg, entity, kind)
        self._keep(key, state, ts, window * 2)
        self._windows[key] = window
        return closed

    def due(self, now: float) -> list[tuple[str, list[Any]]]:
        """Tumbling windows that ended by ``now``, taken out to be judged."""
        found = []
        for key, window in list(self._windows.items()):
            state = self._state.get(key)
            if state is None:
                del self._windows[key]
            elif (state[0] + 1) * window <= now:
                found.append((key, state))
                del self._state[key]
                del self._windows[key]
        return sorted(found, key=lambda kv: (kv[1][2], kv[0]))

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

    def extend_incident(self, key: str, ts: float, item: str, evidence_limit: int) -> None:
        found = self._incidents.get(key)
        if found is not None:
            extend(found, 1, ts, [item], evidence_limit)

    def pop_incident(self, key: str) -> Incident | None:
        return self._incidents.pop(key, None)

    def open_incidents(self) -> Iterator[tuple[str, Incident]]:
        return iter(list(self._incidents.items()))

    def expire(self, now: float) -> None:
        """Forget the windows idle for longer than their time to live. A group is read
        whole once a quarter of its ttl has passed since its last read (a window outlives
        its ttl by that much at most), so that a touch costs one assignment instead of
        keeping the group in order."""
        for ttl, group in self._touched.items():
            last = self._scanned.get(ttl)
            if last is not None and now - last < ttl * SCAN_FRACTION:
                continue
            self._scanned[ttl] = now
            stale = [k for k, touched in group.items() if touched + ttl < now]
            for key in stale:
                del group[key]
                self._state.pop(key, None)

    def clear(self) -> None:
        """Forget every window and incident."""
        for held in (self._state, self._touched, self._scanned, self._seen,
                     self._seen_hours, self._incidents, self._windows):
            held.clear()

    def __len__(self) -> int:
        return len(self._state)
