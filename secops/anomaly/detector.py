"""The detector: events in, one alert per incident and entity out.

For each event, the rules whose ``match`` it satisfies feed their bucket for the event's
entity (through a :class:`~secops.anomaly.store.WindowStore`). When a bucket fires, an
incident opens with the bucket's hits as its count and first evidence; later matching
events of the same rule and entity within the rule's ``incident_gap`` extend it (a
conditional rule's incident only while its conditions still hold). An incident idle
for longer than the gap is closed and becomes an :class:`Alert`. Evidence is bounded
(``evidence_limit`` lines, each cut at ``LINE_LIMIT`` characters) and credentials are
redacted from it.
"""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from secops.anomaly.events import Event, Item
from secops.anomaly.parsers import CombinedParser
from secops.anomaly.rules import OPS, Bucket, Rule, RuleSet
from secops.anomaly.secrets import SecretFinder
from secops.anomaly.store import (
    DISTINCT_CAP,
    NO_NEEDS,
    SLOTS,
    ChunkMark,
    Fired,
    Incident,
    MemoryStore,
    WindowStore,
    aggregate_metric,
    ewma_add,
    ewma_decay,
    replay_pending,
    step_pending,
)

if TYPE_CHECKING:
    from secops.anomaly.novelty import TemplateNovelty, TemplateState

LINE_LIMIT = 500
CORRELATION_ACTION = "sigma_correlation"
_COMPARE: dict[str, Callable[[float, float], bool]] = {**OPS, "!=": operator.ne}
_GE, _LE = OPS[">="], OPS["<="]
EVIDENCE_LIMIT = 10
REDACTED_MEMO = 4096   # evidence lines whose redaction is remembered
SWEEP_EVERY = 4096
SECRET_BATCH = 512
CHUNK = 500   # events per round of a shared store
# (status, method) pairs given a light plan; a log's methods are its writers' to choose,
# so the requests of pairs beyond these go as events instead of growing the cache
LIGHT_PLANS = 256


_Hit = Callable[[Rule, str, Event, str], None]
_Plan = tuple[Rule, Callable[[Event], bool], Callable[[Event], tuple[str, "str | None"]], _Hit]
# a plan of the local fast path: (rule, predicate or None where the event's action and
# success decide it, entity getter, plain attribute reader or None (see _plain_entity),
# entity type, hit)
_LocalPlan = tuple[Rule, Callable[[Event], bool] | None,
                   Callable[[Event], tuple[str, "str | None"]], Callable[[Event], Any] | None,
                   str, _Hit]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    severity: str
    entity: str
    entity_type: str
    start: float
    end: float
    count: int
    evidence: tuple[str, ...]
    title: str = ""
    family: str = ""
    mitre: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The local command's contract: exactly these keys."""
        return {"rule": self.rule, "severity": self.severity, "entity": self.entity,
                "entity_type": self.entity_type, "start": iso(self.start), "end": iso(self.end),
                "count": self.count, "evidence": list(self.evidence)}

    @classmethod
    def from_plain(cls, data: Mapping[str, Any]) -> Alert:
        """Back from :func:`dataclasses.asdict` (kept with a chunk in a shared store)."""
        return cls(**{**data, "evidence": tuple(data["evidence"]), "mitre": tuple(data["mitre"])})

    def to_record(self) -> dict[str, Any]:
        """Everything, for stored alerts: the contract plus title, family and ATT&CK tags."""
        return {**self.to_dict(), "title": self.title, "family": self.family,
                "mitre": list(self.mitre)}


def network(value: str, prefix4: int, prefix6: int) -> str:
    """``value`` as the network that covers it (itself when not an address)."""
    if prefix4 == 32 and prefix6 == 128:
        return value
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return value
    prefix = prefix4 if addr.version == 4 else prefix6
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class Detector:
    def __init__(self, rules: RuleSet | Iterable[Rule] | None = None, *,
                 store: WindowStore | None = None,
                 baseline_ips: Mapping[str, Iterable[str]] | None = None,
                 evidence_limit: int = EVIDENCE_LIMIT,
                 secrets: SecretFinder | None = None,
                 template_state: Callable[[str], TemplateState] | None = None,
                 fast: bool = True, freeze_gc: bool = False) -> None:
        ruleset = rules if isinstance(rules, RuleSet) else (
            RuleSet.shipped() if rules is None else RuleSet(list(rules)))
        self.rules = ruleset.enabled
        self.store: WindowStore = store if store is not None else MemoryStore()
        # Windows in this process's memory: counter, conditional and baseline rules step
        # them through specialised functions (see _hitter) that give what the general
        # steps give; ``fast=False`` keeps every rule on the general steps.
        self._fast = fast and type(self.store) is MemoryStore
        # ``freeze_gc``: while the fast path feeds events, the objects alive at each sweep
        # (the windows, mostly) go to the collector's permanent generation (gc.freeze),
        # so its collections look only at the objects of the last SWEEP_EVERY events
        # instead of every window again; the engine makes no reference cycles as it
        # feeds (tests/anomaly/test_fastpath.py checks it), so nothing is held back
        # that the collector would free. For a process that runs one detection (the
        # local command): the freeze is the whole process's.
        self._freeze_gc = freeze_gc
        self.evidence_limit = evidence_limit
        self.closed: list[Alert] = []
        self.events = 0
        self._chunks = 0
        self._now = 0.0
        self._by_action: dict[str, list[Rule]] = {}
        self._any_action: list[Rule] = []
        self._secret_rules = [r for r in self.rules if r.bucket.type == "secret"]
        for rule in self.rules:
            if rule.bucket.type == "secret":
                continue
            if rule.actions is None:
                self._any_action.append(rule)
            else:
                for action in rule.actions:
                    self._by_action.setdefault(action, []).append(rule)
        self._rules_by_id = {r.id: r for r in self.rules}
        self._cache: dict[str, list[_Plan]] = {}
        # action -> success -> the plans of :meth:`_local_plans_for`
        self._local_plans: dict[str, dict[bool | None, list[_LocalPlan]]] = {}
        self._secret_buffer: list[Any] = []   # events and light tuples
        self._light: dict[tuple[str, str], tuple[tuple[Any, bool], ...] | None] = {}
        self._light_steps: dict[str, Callable[[str, float, float | None, Any], None]] = {}
        self._finder = secrets
        self._redacted: dict[str, str] = {}
        self._template_state = template_state
        self._miners: dict[str, TemplateNovelty] = {}
        if not self._fast:   # (in memory, a miner is made at its rule's first line: Drain3
            for r in self.rules:   # is then not even imported for logs without errors)
                if r.bucket.type == "rare_template":
                    self._miners[r.id] = self._miner(r)
        # incidents as they opened: alerts, or (rule, incident as it opened) until
        # ``opened`` is read (the local command never reads it: no alert to build)
        self._opened: list[Alert | tuple[Rule, Incident]] = []
        self.replayed: set[tuple[str, str, str]] = set()   # (rule, entity type, entity)
        self._conditional: dict[str, tuple[tuple[str, ...], dict[str, int],
                                           Callable[[dict[str, float]], bool]]] = {}
        if self._finder is None and self._secret_rules:
            self._finder = SecretFinder(self._secret_rules[0].bucket.types)
        if baseline_ips:
            for rule in self.rules:
                if rule.bucket.type != "first_seen":
                    continue
                b = rule.bucket
                for account, ips in baseline_ips.items():
                    self.store.remember(self._key(rule, str(account)),
                                        [network(str(ip), b.cover_prefix, b.cover_prefix6)
                                         for ip in ips])

    def _miner(self, rule: Rule) -> TemplateNovelty:
        # imported here: Drain3 is imported only when a rule has an error line to mine
        from secops.anomaly.novelty import TemplateNovelty

        state = self._template_state
        return TemplateNovelty(rule.bucket.learn, state(rule.id) if state else None)

    @staticmethod
    def _key(rule: Rule, entity: str) -> str:
        return f"{rule.id}\x1f{entity}"

    def _rules_for(self, action: str) -> list[_Plan]:
        """(rule, its predicate, its entity getter) of the rules an action can match."""
        found = self._cache.get(action)
        if found is None:
            found = self._cache[action] = [
                (r, r.predicate, _entity_getter(r), self._hitter(r))
                for r in self._by_action.get(action, []) + self._any_action]
        return found

    # -- the local fast path -------------------------------------------------------------

    def _hitter(self, rule: Rule) -> _Hit:
        """How an event that ``rule`` matched is counted: :meth:`_hit`, or for a rule whose
        windows live in a :class:`MemoryStore` and whose bucket has a specialised step, that
        step (the same window state and the same outcome, with less dispatch)."""
        if self._fast:
            kind = rule.bucket.type
            if kind == "baseline":
                return self._baseline_hit(rule)
            if kind == "counter" and rule.bucket.window > 0:
                return self._counter_hit(rule)
            if kind == "conditional":
                return self._conditional_hit(rule)
            if kind == "first_seen":
                return self._first_seen_hit(rule)
        return self._hit

    def _open(self, rule: Rule, key: str, entity: str, entity_type: str, event: Event,
              count: int, first: float, items: list[str]) -> None:
        """A bucket fired with no incident open for ``key``: the correlation event, and
        an incident with its alert unless the rule is silent."""
        if rule.emits:
            self._emit(rule, event)
        if rule.silent:
            return
        ts = event.ts
        incident = Incident(rule.id, entity, entity_type, min(first, ts), ts, count,
                            items[: self.evidence_limit])
        self.store.put_incident(key, incident)
        self._opened.append((rule, Incident(rule.id, entity, entity_type, incident.start, ts,
                                            count, list(incident.evidence))))

    @property
    def opened(self) -> list[Alert]:
        """The alerts of the incidents opened since :meth:`take_opened` last took them, as
        they stood when they opened."""
        found = self._opened
        for i, item in enumerate(found):
            if type(item) is tuple:
                found[i] = self._alert(*item)
        return found   # type: ignore[return-value]   # (every item is an Alert now)

    @opened.setter
    def opened(self, alerts: list[Alert]) -> None:
        self._opened = list(alerts)

    def _baseline_hit(self, rule: Rule) -> _Hit:
        """:meth:`_hit` of a baseline rule over :meth:`MemoryStore.rate`, in one function."""
        step = self._baseline_step(rule)
        sum_field = rule.bucket.sum or None

        def hit(_: Rule, entity: str, event: Event, entity_type: str) -> None:
            if sum_field is None:
                step(entity, event.ts, 1.0, event)
                return
            value = event.get(sum_field)
            step(entity, event.ts, float(value) if isinstance(value, int | float)
                 and not isinstance(value, bool) else None, event)

        return hit

    def _baseline_step(self, rule: Rule) -> Callable[[str, float, float | None, Any], None]:
        """One event of ``amount`` for ``entity`` at ``ts`` through a baseline rule's window
        (:meth:`MemoryStore.rate` and the rule's threshold, in one function); ``source`` is
        the event, or a light tuple of :meth:`LineReader.light` (made an event only when
        an incident opens). An amount of None (no number to sum) only closes an idle
        incident. The window is :func:`~secops.anomaly.store.step_rate`'s with one more
        element: the interval's threshold, kept once the entity's own history decides it
        (it changes only when the interval ends)."""
        store = self.store
        assert isinstance(store, MemoryStore)
        # (containers named by type: the compiled module calls their methods directly)
        states: dict[str, Any] = store._state
        incidents: dict[str, Incident] = store._incidents
        b = rule.bucket
        prefix = rule.id + "\x1f"
        population = prefix + "*"
        interval, alpha, ttl = b.window, b.alpha, b.window * 48
        touched: dict[str, float] = store.touched(ttl)   # (MemoryStore._touch, inline)
        min_history, min_value, ratio, z = b.min_history, b.min_value, b.ratio, b.z
        gap, limit, close = rule.incident_gap, self.evidence_limit, self._close
        entity_type = rule.entity_type

        # (``ts: Any``: the time object as given, stored as it is, not a C double that the
        # compiled module would turn back into a new float at every use)
        def step(entity: str, ts: Any, amount: float | None, source: Any) -> None:
            key = prefix + entity
            open_ = incidents.get(key)
            if open_ is not None and ts - open_.end > gap:
                close(key)
                open_ = None
            if amount is None:
                return
            pop: list[Any] | None = states.get(population)
            if pop is None:
                pop = states[population] = [0.0, 0.0, 0]
            state: list[Any] | None = states.get(key)
            index = int(ts // interval)
            if state is None:   # step_rate's window, and the threshold once computed
                state = states[key] = [index, 0.0, 0, ts, [0.0, 0.0, 0], None]
            if index > state[0]:   # as step_rate: close the finished interval(s)
                ewma_add(state[4], state[1], alpha)
                ewma_add(pop, state[1], alpha)
                ewma_decay(state[4], index - state[0] - 1, alpha)
                state[:4] = [index, 0.0, 0, ts]
                state[5] = None
            state[1] += amount
            state[2] += 1
            touched[key] = ts
            touched[population] = ts
            current = state[1]
            if current <= min_value:   # (the threshold is never below min_value)
                return
            threshold = state[5]
            if threshold is None:
                own = state[4]
                if int(own[2]) >= min_history:   # the entity's own: fixed for the interval
                    mean, var = own[0], own[1]
                    threshold = state[5] = max(min_value, ratio * mean,
                                               mean + z * max(var, 0.0) ** 0.5)
                else:   # everyone's, which moves as other entities' intervals end
                    mean, var = pop[0], pop[1]
                    threshold = max(min_value, ratio * mean, mean + z * max(var, 0.0) ** 0.5)
            if not current > threshold:
                return
            light = source.__class__ is tuple
            item = (source[2] if light else source.raw)[:LINE_LIMIT]
            if open_ is not None:
                _extend(open_, ts, item, limit)
                return
            self._open(rule, key, entity, entity_type,
                       self._light_event(source) if light else source, state[2], state[3],
                       [item])

        return step

    # -- light requests: access log lines read only by baseline rules ---------------------

    def light_plan(self, status: str, method: str) -> tuple[tuple[Any, bool], ...] | None:
        """For the requests of an access log with this status and method: the baseline
        steps that read them, with whether each sums their bytes (an empty plan: no rule
        reads them), or None when they must be events (a rule reads other fields of them,
        or a rule that is not a count or byte baseline by path reads them, or the
        windows are not this process's). A rule's match is tried on a request of the
        status and method alone, which decides it only because every rule that can match
        a request reads nothing else of it (a rule whose fields are unknown makes None)."""
        key = (status, method)
        if key in self._light:
            return self._light[key]
        plan: tuple[tuple[Any, bool], ...] | None = None
        if self._fast and len(self._light) < LIGHT_PLANS:
            # a request of this status and method, as the access log's parser makes it
            proto = CombinedParser().parse(
                f'192.0.2.0 - - [01/Jan/2000:00:00:00 +0000] "{method} / HTTP/1.1" {status} 0')[0]
            steps: list[tuple[Any, bool]] = []
            usable = True
            for rule, predicate, _, _ in self._rules_for("request"):
                if rule.reads is None or not rule.reads <= _LIGHT_READS:
                    usable = False
                    break
                if not predicate(proto):
                    continue
                b = rule.bucket
                if (b.type != "baseline" or rule.group_by not in ("endpoint", "path")
                        or rule.entity_type == "auto" or rule.emits
                        or (b.sum or None) not in (None, "bytes")):
                    usable = False
                    break
                step = self._light_steps.get(rule.id)
                if step is None:
                    step = self._light_steps[rule.id] = self._baseline_step(rule)
                steps.append((step, b.sum == "bytes"))
            if usable:
                plan = tuple(steps)
        if len(self._light) < LIGHT_PLANS:
            self._light[key] = plan
        return plan

    @staticmethod
    def _light_event(item: tuple[Any, ...]) -> Event:
        """The event of a light tuple, as the access log's parser makes it."""
        event = CombinedParser().parse(item[2])[0]
        event.origin = item[5]
        return event

    def _first_seen_hit(self, rule: Rule) -> _Hit:
        """:meth:`_hit` of a first-seen rule, which does nothing for an entity without a
        baseline and without an open incident (:meth:`MemoryStore.first_seen` says None:
        nothing to compare with, nothing learnt): most entities, when few have one."""
        store = self.store
        assert isinstance(store, MemoryStore)
        seen: dict[str, set[str]] = store._seen
        incidents: dict[str, Incident] = store._incidents
        full = self._hit
        prefix = rule.id + "\x1f"

        def hit(_: Rule, entity: str, event: Event, entity_type: str) -> None:
            key = prefix + entity
            if key in seen or key in incidents:
                full(rule, entity, event, entity_type)

        return hit

    def _counter_hit(self, rule: Rule) -> _Hit:
        """:meth:`_hit` of a counter rule over :meth:`MemoryStore.counter`, in one function.
        The window is :func:`~secops.anomaly.store.step_counter`'s, held flat: one list
        ``[time, line, time, line, ...]`` instead of a list per hit, and a first hit as a
        tuple ``(time, line)`` (this detector's windows only: no other code reads them)."""
        store = self.store
        assert isinstance(store, MemoryStore)
        states: dict[str, Any] = store._state
        incidents: dict[str, Incident] = store._incidents
        b = rule.bucket
        prefix = rule.id + "\x1f"
        window, threshold = b.window, b.threshold
        held, firing = 2 * (threshold + 1), 2 * threshold
        gap, limit, close = rule.incident_gap, self.evidence_limit, self._close
        # MemoryStore._keep inline: ``states[key] = state`` and ``touched[key] = ts``
        touched: dict[str, float] = store.touched(window)

        def hit(_: Rule, entity: str, event: Event, entity_type: str) -> None:
            key = prefix + entity
            ts = event.ts
            item = event.raw[:LINE_LIMIT]
            open_ = incidents.get(key)
            if open_ is not None:
                if ts - open_.end <= gap:   # an open incident: every event extends it
                    _extend(open_, ts, item, limit)
                    return
                close(key)
            held_hits = states.get(key)
            if held_hits is None:   # a first hit: a tuple, which the collector stops tracking
                if firing >= 2:
                    states[key] = (ts, item)
                    touched[key] = ts
                    return
                hits: list[Any] = [ts, item]
            else:
                hits = held_hits if type(held_hits) is list else list(held_hits)
                hits.append(ts)
                hits.append(item)
                if len(hits) > held:
                    del hits[:len(hits) - held]
                edge = ts - window
                old = 0
                while hits[old] < edge:   # (the hit just added is never older)
                    old += 2
                if old:
                    del hits[:old]
            touched[key] = ts
            if len(hits) <= firing:
                if hits is not held_hits:   # (else changed in place)
                    states[key] = hits
                return
            states.pop(key, None)
            self._open(rule, key, entity, entity_type, event, len(hits) // 2, hits[0],
                       hits[1::2])

        return hit

    def _conditional_hit(self, rule: Rule) -> _Hit:
        """:meth:`_hit` of a conditional rule over :meth:`MemoryStore.tally` and
        :func:`~secops.anomaly.store.step_tally`, in one function over the same state."""
        store = self.store
        assert isinstance(store, MemoryStore)
        states: dict[str, Any] = store._state
        incidents: dict[str, Incident] = store._incidents
        b = rule.bucket
        prefix = rule.id + "\x1f"
        fields, caps, check = _conditional_plan(b)
        needs = check.needs
        lazy = needs != NO_NEEDS
        names = tuple(fields)
        reads = tuple(attrgetter(f) if f in _PLAIN_ATTRS else _field_reader(f) for f in fields)
        single = reads[0] if len(reads) == 1 else None
        pair = reads if len(reads) == 2 else None
        distinct = tuple((f, caps.get(f, DISTINCT_CAP)) for f in fields)
        width_fields = len(distinct)
        window = b.window
        width = window / SLOTS
        gap, limit, close = rule.incident_gap, self.evidence_limit, self._close
        # MemoryStore._keep inline: ``states[key] = state`` and ``touched[key] = ts``
        touched: dict[str, float] = store.touched(window)
        # the conditions over the window's metrics, as Conditions checks them, with each
        # metric at its place in a list: count, failures, successes, success rate, then
        # the distinct counts in the order of ``fields``
        places = {"count": 0, "failures": 1, "successes": 2, "success_rate": 3,
                  **{"distinct_" + f: 4 + n for n, f in enumerate(fields)}}
        conditions = tuple((places[name], op, bound) for name, op, bound in check.conditions)

        def hit(_: Rule, entity: str, event: Event, entity_type: str) -> None:
            key = prefix + entity
            ts = event.ts
            open_ = incidents.get(key)
            if open_ is not None and ts - open_.end > gap:
                close(key)
                open_ = None
            # a tuple of strings: kept while the window waits, the collector leaves it
            if single is not None:
                value = single(event)
                found: tuple[str | None, ...] = (
                    None if value is None or value == "" else
                    value if type(value) is str else str(value),)
            elif pair is not None:
                value = pair[0](event)
                other = pair[1](event)
                found = (None if value is None or value == "" else
                         value if type(value) is str else str(value),
                         None if other is None or other == "" else
                         other if type(other) is str else str(other))
            else:
                found = tuple([None if value is None or value == "" else str(value)
                               for value in [read(event) for read in reads]])
            item = event.raw[:LINE_LIMIT]
            success = event.success
            t = states.get(key)
            fresh = False   # a new state object for the key (else it changed in place)
            if lazy and t is None:   # step_pending of a first event: the window waits,
                states[key] = (ts, success, item, found)   # as the event alone (a tuple)
                touched[key] = ts
                return
            if lazy and type(t) is tuple:   # the waiting window of one event
                t = [1 if t[1] is False else 0, 1 if t[1] is True else 0, t]
                fresh = True
            if lazy and type(t) is list:   # MemoryStore.tally, lazily
                t, ready = step_pending(t, ts, success, item, found, window, limit, needs)
                if not ready:
                    if fresh:
                        states[key] = t
                    touched[key] = ts
                    return
                t = replay_pending(t, window, caps, limit, check, names)
                fresh = True
            # step_tally, with the metrics checked as they are computed
            if t is None:
                t = {"slots": [], "count": 0, "failures": 0, "successes": 0, "values": {},
                     "items": []}
                fresh = True
            slots: list[Any] = t["slots"]
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
            metrics: list[float] = [count, bad, ok, ok / (ok + bad) if ok + bad else 1.0]
            known: dict[str, dict[str, float]] = t["values"]
            for i in range(width_fields):
                name, cap = distinct[i]
                value = found[i]
                seen: dict[str, float] | None = known.get(name)
                if seen is None:
                    seen = known[name] = {}
                if value is not None:
                    if value in seen:
                        del seen[value]
                    seen[value] = ts
                # step_tally's loop in two steps (the same values go): the oldest beyond
                # the cap, then the oldest out of the window
                while len(seen) > cap:
                    del seen[next(iter(seen))]
                stale: list[str] | None = None
                for oldest, last in seen.items():
                    if last >= edge:
                        break
                    if stale is None:
                        stale = [oldest]
                    else:
                        stale.append(oldest)
                if stale is not None:
                    for oldest in stale:
                        del seen[oldest]
                metrics.append(len(seen))
            items: list[str] = t["items"]
            items.append(item)
            if len(items) > limit:
                if limit and len(items) == limit + 1:   # (the usual case: no slice)
                    del items[0]
                else:
                    del items[:-limit]
            if fresh:
                states[key] = t
            touched[key] = ts
            for place, op, bound in conditions:   # (as Conditions checks them)
                value = metrics[place]
                if not (value >= bound if op is _GE else value <= bound if op is _LE
                        else op(value, bound)):
                    return
            if open_ is not None:
                _extend(open_, ts, item, limit)
                return
            self._open(rule, key, entity, entity_type, event, count,
                       slots[0][4] if slots else ts, list(items))

        return hit

    # -- feeding ----------------------------------------------------------------------

    def _matches(self, event: Event) -> list[tuple[Rule, str, str]]:
        """(rule, entity, entity type) of every rule the event matches."""
        found = []
        for rule, predicate, entity_of, _ in self._rules_for(event.action):
            if predicate(event):
                kind, entity = entity_of(event)
                if entity is not None:
                    found.append((rule, entity, kind))
        return found

    def feed(self, event: Event, matches: list[tuple[Rule, str, str]] | None = None) -> None:
        self.events += 1
        if event.ts > self._now:
            self._now = event.ts
        if matches is None:
            plans = self._cache.get(event.action)
            if plans is None:
                plans = self._rules_for(event.action)
            for rule, predicate, entity_of, hit in plans:
                if predicate(event):
                    kind, entity = entity_of(event)
                    if entity is not None:
                        hit(rule, entity, event, kind)
        else:
            for rule, entity, kind in matches:
                self._hit(rule, entity, event, kind)
        if self._secret_rules:
            self._secret_buffer.append(event)
            if len(self._secret_buffer) >= SECRET_BATCH:
                self._flush_secrets()
        if self.events & (SWEEP_EVERY - 1) == 0:
            self.sweep(self._now)

    def _local_plans_for(self, action: str, success: bool | None) -> list[_LocalPlan]:
        """:meth:`_rules_for` of the events of ``action`` and ``success``, decided ahead
        for a rule that tests nothing but those two fields: left out when its predicate
        rejects such an event, else kept without its predicate (every such event
        satisfies it)."""
        by_success = self._local_plans.setdefault(action, {})
        found = by_success.get(success)
        if found is None:
            probe = Event(0.0, action, "", success=success)
            found = by_success[success] = [
                (r, None if decided else predicate, e, _plain_entity(r), r.entity_type, h)
                for r, predicate, e, h in self._rules_for(action)
                for decided in (r.reads is not None and r.reads <= _ACTION_AND_SUCCESS,)
                if not decided or predicate(probe)]
        return found

    def _feed_local(self, blocks: Iterable[Iterable[Item]]) -> None:
        """:meth:`feed` of every event of every block, with the loop's state in local
        variables (written back before each sweep and at the end)."""
        cache, rules_for = self._local_plans, self._local_plans_for
        secrets = bool(self._secret_rules)
        buffer = self._secret_buffer
        count, now = self.events, self._now
        mask = SWEEP_EVERY - 1
        freeze = self._freeze_gc
        try:
            for events in blocks:
                for event in events:
                    count += 1
                    if isinstance(event, tuple):   # a light request (LineReader.light)
                        ts = event[0]
                        if ts > now:
                            now = ts
                        for step, summed in event[3]:
                            step(event[1], ts, float(event[4]) if summed else 1.0, event)
                    else:
                        ts = event.ts
                        if ts > now:
                            now = ts
                        by_success = cache.get(event.action)
                        plans = None if by_success is None else by_success.get(event.success)
                        if plans is None:
                            plans = rules_for(event.action, event.success)
                        for rule, predicate, entity_of, read, kind, hit in plans:
                            if predicate is not None and not predicate(event):
                                continue
                            if read is not None:   # (_entity_getter's common case, inline)
                                entity = read(event)
                                if entity is None or entity == "":
                                    continue
                                if type(entity) is not str:
                                    entity = str(entity)
                            else:
                                kind, entity = entity_of(event)
                                if entity is None:
                                    continue
                            hit(rule, entity, event, kind)
                    if secrets:
                        buffer.append(event)
                        if len(buffer) >= SECRET_BATCH:
                            self._flush_secrets()
                            buffer = self._secret_buffer
                    if count & mask == 0:
                        self.events, self._now = count, now
                        if freeze:
                            gc.freeze()
                        self.sweep(now)
        finally:
            self.events, self._now = count, now
            if freeze:
                gc.unfreeze()

    def feed_all(self, events: Iterable[Item]) -> None:
        batch = getattr(self.store, "batch", None)
        if batch is None:
            if self._fast:
                self._feed_local((events,))
            else:
                for event in _events_only(events):
                    self.feed(event)
            return
        # A shared store (Redis) takes every window a chunk of events needs at once, so a
        # chunk costs a few round trips instead of two per rule and event.
        chunk: list[Event] = []
        for event in _events_only(events):
            chunk.append(event)
            if len(chunk) >= CHUNK:
                self._feed_chunk(chunk, batch)
                chunk = []
        if chunk:
            self._feed_chunk(chunk, batch)

    def feed_blocks(self, blocks: Iterable[list[Item]]) -> None:
        """:meth:`feed_all` of events that come a list at a time (see
        :func:`~secops.anomaly.reading.merged_blocks`)."""
        if self._fast:   # (a MemoryStore: no batch of a shared store to take)
            self._feed_local(blocks)
        else:
            self.feed_all(itertools.chain.from_iterable(blocks))

    def _feed_chunk(self, chunk: list[Event], batch: Callable[..., Any]) -> None:
        matched = [self._matches(e) for e in chunk]
        keys: set[str] = set()
        for matches in matched:
            for rule, entity, _ in matches:
                keys.add(self._key(rule, entity))
                if rule.bucket.type == "baseline":
                    keys.add(f"{rule.id}\x1f*")
        # The chunk's place and content name it: a retried job that reads the same events
        # again finds the chunk counted and takes back what it produced instead.
        digest = hashlib.sha256()
        for event in chunk:
            digest.update(event.raw.encode("utf-8", "replace") + b"\n")
        name = f"{self._chunks}:{digest.hexdigest()[:32]}"
        self._chunks += 1
        with batch(keys, chunk=name) as mark:
            if isinstance(mark, ChunkMark) and mark.done:
                self.events += len(chunk)
                self._now = max(self._now, max(e.ts for e in chunk))
                again = [Alert.from_plain(a) for a in mark.produced.get("opened", [])]
                self.opened.extend(again)
                self.replayed.update((a.rule, a.entity_type, a.entity) for a in again)
                self.closed.extend(Alert.from_plain(a) for a in mark.produced.get("closed", []))
                return
            opened, closed = len(self.opened), len(self.closed)
            for event, matches in zip(chunk, matched, strict=True):
                self.feed(event, matches)
            self._flush_secrets()   # the chunk's credentials count with the chunk
            if isinstance(mark, ChunkMark):
                mark.produced = {"opened": [asdict(a) for a in self.opened[opened:]],
                                 "closed": [asdict(a) for a in self.closed[closed:]]}

    def _hit(self, rule: Rule, entity: str, event: Event, entity_type: str) -> None:
        key = self._key(rule, entity)
        if rule.bucket.type == "aggregate":
            b = rule.bucket
            closed = self.store.aggregate(key, event.ts, event.raw[:LINE_LIMIT],
                                          event.get(b.field) if b.field else None, b.window,
                                          self.evidence_limit, b.agg, entity, entity_type)
            if closed is not None:
                self._judge(rule, closed)
            return
        if rule.bucket.type == "rare_template":   # one incident per new template
            miner = self._miners.get(rule.id)
            if miner is None:
                miner = self._miners[rule.id] = self._miner(rule)
            novel, cluster = miner.add(event.ts, event.message)
            key = f"{key}\x1f{cluster}"
            if not novel:   # only repeats of a new template, while its alert is open
                open_ = self.store.incident(key)
                if open_ is None or event.ts - open_.end > rule.incident_gap:
                    return
        store, ts, item = self.store, event.ts, event.raw[:LINE_LIMIT]
        open_ = store.incident(key)
        if open_ is not None and ts - open_.end > rule.incident_gap:
            self._close(key)
            open_ = None
        fired = self._bucket(rule, key, event, item, extending=open_ is not None)
        if open_ is not None:
            if fired is not None:   # one atomic step in a shared store: no lost count
                store.extend_incident(key, ts, item, self.evidence_limit)
            return
        if fired is not None:
            self._open(rule, key, entity, entity_type, event, fired.count, fired.first,
                       fired.items)

    def _emit(self, rule: Rule, event: Event) -> None:
        """A correlation fired: an event of it, with the fields of the event that made it
        fire, for the correlations that reference it."""
        derived = replace(event, action=CORRELATION_ACTION, level=None,
                          extra={**event.extra, "sigma_rule": rule.id})
        for other, predicate, entity_of, hit in self._rules_for(CORRELATION_ACTION):
            if other is not rule and predicate(derived):
                kind, entity = entity_of(derived)
                if entity is not None:   # (the rule's own step: its windows' layout)
                    hit(other, entity, derived, kind)

    def _judge(self, rule: Rule, summary: list[Any]) -> None:
        """A finished tumbling window: one alert when its value meets the condition."""
        b = rule.bucket
        value = aggregate_metric(summary, b.agg, b.percentile)
        if value is None or not _COMPARE[b.op](value, b.bound) or rule.silent:
            return
        _, count, first, last, *_, items, entity, kind = summary
        incident = Incident(rule.id, entity, kind, first, last, count, list(items))
        self.opened.append(self._alert(rule, incident))
        self.closed.append(self._alert(rule, incident))

    def _judge_due(self, now: float) -> None:
        due = getattr(self.store, "due", None)
        if due is None:
            return
        for key, summary in due(now):
            rule = self._rules_by_id.get(key.partition("\x1f")[0])
            if rule is not None:
                self._judge(rule, summary)

    def _bucket(self, rule: Rule, key: str, event: Event, item: str,
                *, extending: bool) -> Fired | None:
        """Feed the rule's bucket; while an incident is open, say whether the event extends it."""
        b, ts = rule.bucket, event.ts
        kind = b.type
        if kind in ("each", "secret"):   # a secret rule is fed only lines with a credential
            return Fired(1, ts, [item])
        if kind == "first_seen":
            value = event.get(b.field or "ip")
            if value is None:
                return None
            new = self.store.first_seen(key, network(str(value), b.cover_prefix, b.cover_prefix6))
            return Fired(1, ts, [item]) if new else None
        if kind == "baseline":
            amount = 1.0
            if b.sum:
                value = event.get(b.sum)
                if not isinstance(value, int | float) or isinstance(value, bool):
                    return None
                amount = float(value)
            view = self.store.rate(key, f"{rule.id}\x1f*", ts, amount, b.window, b.alpha)
            own = view.history >= b.min_history
            mean, sd = (view.mean, view.sd) if own else (view.pop_mean, view.pop_sd)
            if view.current > max(b.min_value, b.ratio * mean, mean + b.z * sd):
                return Fired(view.events, view.first, [item])
            return None
        if kind == "new_hour":
            hour = int(ts // 3600 % 24)
            mask, seen = self.store.hours(key, hour)
            near = 0
            for h in range(hour - b.tolerance, hour + b.tolerance + 1):
                near |= 1 << (h % 24)
            return Fired(1, ts, [item]) if seen >= b.min_history and not mask & near else None
        if kind == "rare_template":   # _hit passes only lines of a novel template
            return Fired(1, ts, [item])
        if kind == "conditional":
            plan = self._conditional.get(rule.id)
            if plan is None:
                plan = self._conditional[rule.id] = _conditional_plan(b)
            fields, caps, check = plan
            values = {f: _str(event.get(f)) for f in fields}
            return self.store.tally(key, ts, item, b.window, event.success, values, caps,
                                    self.evidence_limit, check)
        if extending:
            return Fired(1, ts, [item])
        if kind == "counter":
            return self.store.counter(key, ts, item, b.window, b.threshold)
        if kind == "distinct":
            value = event.get(b.field or "")
            if value is None:
                return None
            return self.store.distinct(key, ts, str(value), item, b.window, b.threshold)
        if kind == "temporal":
            matched = [i for i, p in enumerate(b.predicates) if p(event)]
            return self.store.temporal(key, ts, item, matched, len(b.predicates), b.window,
                                       b.ordered, self.evidence_limit)
        if kind == "leaky":
            return self.store.leaky(key, ts, item, b.capacity, b.leak, self.evidence_limit)
        raise AssertionError(kind)

    def _flush_secrets(self) -> None:
        buffer, self._secret_buffer = self._secret_buffer, []
        if not buffer or self._finder is None:
            return
        found = self._finder.scan([e[2] if e.__class__ is tuple else e.raw for e in buffer])
        for index in sorted(found):
            event = buffer[index]
            if event.__class__ is tuple:
                event = self._light_event(event)
            for rule in self._secret_rules:
                entity = rule.entity(event)
                if entity is not None:
                    self._hit(rule, entity, event, rule.entity_type)

    # -- closing ------------------------------------------------------------------------

    def _alert(self, rule: Rule, incident: Incident) -> Alert:
        evidence = incident.evidence
        if self._finder is not None:
            evidence = [self._redact(line) for line in evidence]
        return Alert(rule.id, rule.severity, incident.entity, incident.entity_type,
                     incident.start, incident.end, incident.count, tuple(evidence),
                     rule.title, rule.family, rule.mitre)

    def _redact(self, line: str) -> str:
        """The line without its credentials. An incident's first evidence lines are in its
        alert when it opens and again when it closes: each line is scanned once (the
        latest ``REDACTED_MEMO`` lines are remembered)."""
        memo = self._redacted
        done = memo.get(line)
        if done is None:
            assert self._finder is not None
            done = self._finder.redact(line)
            if len(memo) >= REDACTED_MEMO:
                del memo[next(iter(memo))]
            memo[line] = done
        return done

    def _close(self, key: str) -> None:
        incident = self.store.pop_incident(key)
        if incident is None:
            return
        rule = self._rules_by_id.get(incident.rule)
        if rule is not None:   # (a rule switched off since the incident opened: dropped)
            self.closed.append(self._alert(rule, incident))

    def sweep(self, now: float) -> None:
        """Close incidents idle past their gap, judge tumbling windows that ended and forget
        idle windows (bounded memory)."""
        self._judge_due(now)
        for key, incident in self.store.open_incidents():
            if incident.end + self._rules_by_id[incident.rule].incident_gap < now:
                self._close(key)
        self.store.expire(now)

    def flush(self) -> None:
        """Scan the lines still waiting for the credential check."""
        self._flush_secrets()

    def take_opened(self) -> list[Alert]:
        """Incidents opened since the last call, as they stood when they opened. Superseding
        applies as it does to closed alerts: an alert that one of a superseding rule opened
        with it absorbs, or that an open incident of a superseding rule on the same entity
        covers, is left out (one burst, one alert)."""
        opened, self.opened = self.opened, []
        return [a for a in self._absorb(opened) if not self._covered(a)]

    def _covered(self, alert: Alert) -> bool:
        for rule in self.rules:
            if alert.rule not in rule.supersedes:
                continue
            open_ = self.store.incident(self._key(rule, alert.entity))
            slack = rule.incident_gap
            if (open_ is not None and open_.entity_type == alert.entity_type
                    and alert.start <= open_.end + slack and open_.start <= alert.end + slack):
                return True
        return False

    def take_closed(self, now: float) -> list[Alert]:
        """Close incidents idle past their gap at ``now``; the alerts closed since the last call
        (open incidents stay open for the next run: their windows live in the store)."""
        self.flush()
        self.sweep(now)
        closed = self._absorb(self.closed)
        self.closed = []
        return sorted(closed, key=lambda a: (a.start, a.rule, a.entity))

    def finish(self) -> list[Alert]:
        """Close everything still open; all alerts, ordered by start, rule and entity."""
        self._flush_secrets()
        self._judge_due(math.inf)
        for key, _ in self.store.open_incidents():
            self._close(key)
        alerts = sorted(self._absorb(self.closed), key=lambda a: (a.start, a.rule, a.entity))
        self.closed = []
        return alerts

    def release(self) -> None:
        """Forget the windows of a detector that is done (after :meth:`finish`): their
        memory is freed now, by reference counts, instead of by a full pass of the cycle
        collector over every window (the detector's steps refer back to it)."""
        if isinstance(self.store, MemoryStore):   # (never a shared store's windows)
            self.store.clear()

    def _absorb(self, alerts: list[Alert]) -> list[Alert]:
        """Fold each alert into an overlapping one of a rule that supersedes its rule."""
        by_entity: dict[tuple[str, str], list[int]] = {}
        for i, a in enumerate(alerts):
            by_entity.setdefault((a.entity_type, a.entity), []).append(i)
        result = list(alerts)
        gone: set[int] = set()
        for indexes in by_entity.values():
            for i in indexes:
                winner = result[i]
                rule = self._rules_by_id[winner.rule]
                if not rule.supersedes:
                    continue
                for j in indexes:
                    loser = result[j]
                    if j in gone or j == i or loser.rule not in rule.supersedes:
                        continue
                    slack = rule.incident_gap
                    if loser.start <= winner.end + slack and winner.start <= loser.end + slack:
                        gone.add(j)
                        evidence = winner.evidence if winner.start <= loser.start else loser.evidence
                        winner = replace(winner, start=min(winner.start, loser.start),
                                         end=max(winner.end, loser.end),
                                         count=max(winner.count, loser.count), evidence=evidence)
                result[i] = winner
        return [a for i, a in enumerate(result) if i not in gone]


def _extend(incident: Incident, ts: Any, item: str, limit: int) -> None:
    """:func:`~secops.anomaly.store.extend` of one event."""
    incident.count += 1
    if ts > incident.end:
        incident.end = ts
    evidence: list[str] = incident.evidence
    if len(evidence) < limit:
        evidence.append(item)


def _plain_entity(rule: Rule) -> Callable[[Event], Any] | None:
    """The reader of the event attribute that ``rule`` groups by, in the common case of
    a fixed entity type and a plain attribute (else None): a value of None or "" is no
    entity, another is the entity as a string."""
    if (rule.entity_type == "auto" or rule.bucket.type == "secret"
            or rule.group_by not in _PLAIN_ATTRS):
        return None
    return attrgetter(rule.group_by)


def _entity_getter(rule: Rule) -> Callable[[Event], tuple[str, str | None]]:
    """(entity type, entity) of an event for ``rule``: :meth:`Rule.entity_of`, with the
    common case (see :func:`_plain_entity`) read directly."""
    kind, read = rule.entity_type, _plain_entity(rule)
    if read is None:
        return rule.entity_of

    def entity(event: Event) -> tuple[str, str | None]:
        value = read(event)
        if value is None or value == "":
            return kind, None
        return kind, value if type(value) is str else str(value)

    return entity


_ACTION_AND_SUCCESS = frozenset({"action", "success"})
_PLAIN_ATTRS = frozenset(Event.__dataclass_fields__) - {"extra"} | {"endpoint"}
# the fields of a request that its status and method decide (the others are the same for
# every request: no host, service, role...)
_LIGHT_READS = frozenset({"action", "source", "success", "host", "service", "method", "status",
                          "role", "mfa", "level"})


def _field_reader(name: str) -> Callable[[Event], Any]:
    return lambda event: event.get(name)


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _conditional_plan(b: Bucket) -> tuple[tuple[str, ...], dict[str, int], Conditions]:
    """A conditional bucket's distinct fields, how many values of each to keep, its check."""
    fields = b.distinct_fields
    return fields, {f: _cap(b.conditions, f) for f in fields}, Conditions(b.conditions)


class Conditions:
    """A conditional bucket's check over its metrics. ``needs`` are the least numbers of
    events, failures and successes a window must hold for every condition to hold
    (failures, successes and distinct values never exceed the count), which lets a store
    skip work for windows that hold fewer."""

    def __init__(self, conditions: Iterable[tuple[str, str, float]]) -> None:
        self.conditions = tuple((name, OPS[op], v) for name, op, v in conditions)
        least = {"count": 0, "failures": 0, "successes": 0}
        for name, op, v in conditions:
            if op == ">=" or op == "==":
                at_least = math.ceil(v)
            elif op == ">":
                at_least = math.floor(v) + 1
            else:
                continue
            if name in least:
                least[name] = max(least[name], at_least)
            if name in least or name.startswith("distinct_"):
                least["count"] = max(least["count"], at_least)
        self.needs = (least["count"], least["failures"], least["successes"])
        # one event in the window or none: keeping the events themselves saves nothing
        if self.needs[0] <= 1:
            self.needs = NO_NEEDS

    def __call__(self, metrics: dict[str, float]) -> bool:
        for name, op, v in self.conditions:
            if not op(metrics[name], v):
                return False
        return True


def _cap(conditions: tuple[tuple[str, str, float], ...], name: str) -> int:
    """Distinct values worth keeping: enough to decide every condition on them."""
    limits = [v for m, op, v in conditions if m == "distinct_" + name]
    if all(op in (">", ">=") for m, op, _ in conditions if m == "distinct_" + name):
        return int(max(limits)) + 1
    return DISTINCT_CAP


def _events_only(items: Iterable[Item]) -> Iterator[Event]:
    """The events of ``items``. Light requests come only from a plan of ``light_plan``,
    which only the fast path gives, so one here means a caller mixed up detectors."""
    for item in items:
        if isinstance(item, tuple):
            raise TypeError("a light request was given to a detector without the fast path")
        yield item
