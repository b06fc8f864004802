"""Detection rules as data: YAML files of rules, shipped in the package and overridable.

A rule file holds ``rules:``, a list of mappings::

    - id: auth-failures-ip            # unique; a user file with the same id replaces it
      title: Repeated failed logins from one address
      family: brute_force             # what kind of attack (reports, evaluation)
      severity: high                  # low | medium | high | critical
      enabled: true
      match: {action: login, success: false}   # or a list of such mappings (any of them)
      group_by: ip                    # the entity field: ip, user, endpoint or any field
      entity_type: ip                 # ip | user | endpoint (defaults from group_by)
      bucket: {type: counter, window: 300, threshold: 5}
      mitre: [T1110.001]
      supersedes: [other-rule-id]     # its alert absorbs theirs on the same entity and time

A match value is a scalar (equal), a list (one of), or a mapping of tests: ``re``
(regular expression search), ``gt``/``gte``/``lt``/``lte``, ``exists`` (true/false),
``not`` (a value or list the field must not be).

Buckets (every window is in seconds):

* ``counter``: more than ``threshold`` matching events within ``window``.
* ``leaky``: a leaky bucket of ``capacity`` leaking one event every ``leak`` seconds
  overflows (CrowdSec's leaky bucket): bursts alert, a steady trickle does not.
* ``distinct``: more than ``threshold`` distinct values of ``field`` within ``window``.
* ``conditional``: over ``window``, every condition of ``conditions`` holds; a
  condition is ``[metric, op, value]`` with metric ``count``, ``failures``,
  ``successes``, ``success_rate`` or ``distinct_<field>`` and op ``> >= < <= ==``.
* ``each``: every matching event alerts (events of one entity within ``window`` of each
  other make one alert).
* ``first_seen``: a value of ``field`` never seen for the entity, when the entity has a
  baseline (``cover_prefix`` makes an IPv4 address count as seen when its ``/N``
  network was; ``cover_prefix6`` likewise for IPv6).
* ``secret``: a line in which the DLP engine finds a credential (``types`` narrows it).
* ``baseline``: the entity's total per ``interval`` (events, or the sum of field ``sum``)
  against its own EWMA baseline (``alpha``), or against the population of all entities
  of the rule while it has fewer than ``min_history`` intervals: it fires above
  ``min_value``, above ``ratio`` times the mean and above the mean plus ``z`` standard
  deviations, all three.
* ``new_hour``: a login at an hour (UTC, ``tolerance`` hours either side) never seen for
  the entity, once it has ``min_history`` logins.
* ``rare_template``: a line whose template (Drain3 online template mining) was never
  seen before, after ``learn`` seconds of learning (match on ``level: error`` for new
  error messages).

An alert stays open while matching events of its entity keep coming within
``incident_gap`` seconds (default: the bucket's window) and is then one alert with its
count and time span.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from secops.anomaly.errors import RuleError
from secops.anomaly.events import Event

SEVERITIES = ("low", "medium", "high", "critical")
ENTITY_TYPES = ("ip", "user", "endpoint")
BUCKETS = ("counter", "leaky", "distinct", "conditional", "each", "first_seen", "secret",
           "baseline", "new_hour", "rare_template")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}
_BASE_METRICS = ("count", "failures", "successes", "success_rate")
_MITRE = re.compile(r"T\d{4}(?:\.\d{3})?\Z")

Predicate = Callable[[Event], bool]
_ENTITY_ATTRS = frozenset(Event.__dataclass_fields__) - {"extra"} | {"endpoint"}


@dataclass(frozen=True)
class Bucket:
    type: str
    window: float = 300.0
    threshold: int = 0
    field: str | None = None
    capacity: float = 0.0
    leak: float = 0.0
    conditions: tuple[tuple[str, str, float], ...] = ()
    cover_prefix: int = 32
    cover_prefix6: int = 128
    types: tuple[str, ...] = ()
    sum: str | None = None
    alpha: float = 0.3
    z: float = 4.0
    ratio: float = 3.0
    min_value: float = 0.0
    min_history: int = 3
    tolerance: int = 1
    learn: float = 3600.0
    ordered: bool = False                                   # temporal (Sigma) buckets
    agg: str = ""            # aggregate (Sigma) buckets: count, distinct, sum, avg, percentile
    op: str = ""             # ... the comparison of the window's value: > >= < <= == !=
    bound: float = 0.0       # ... with this
    percentile: float = 0.0
    predicates: tuple[Callable[[Event], bool], ...] = dataclasses.field(
        default=(), compare=False, repr=False)

    @property
    def distinct_fields(self) -> tuple[str, ...]:
        return tuple(sorted({m[len("distinct_"):] for m, _, _ in self.conditions
                             if m.startswith("distinct_")}))


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: str
    bucket: Bucket
    group_by: str
    entity_type: str
    family: str = ""
    mitre: tuple[str, ...] = ()
    enabled: bool = True
    incident_gap: float = 0.0
    match: tuple[Mapping[str, Any], ...] = ()
    supersedes: tuple[str, ...] = ()
    source: str = ""
    predicate: Predicate = field(default=lambda e: True, compare=False, repr=False)
    actions: frozenset[str] | None = None   # the event actions it can match (None: any)
    emits: bool = False      # each time it fires, a ``sigma_correlation`` event for other rules
    silent: bool = False     # it raises no alert of its own (it only feeds correlations)
    # the event fields ``predicate`` reads (those named in ``match``); None when unknown
    # (a predicate built otherwise, e.g. from a Sigma rule)
    reads: frozenset[str] | None = field(default=None, compare=False)

    def entity(self, event: Event) -> str | None:
        group_by = self.group_by
        if group_by in _ENTITY_ATTRS:
            value = getattr(event, group_by)
        elif group_by == "auto":
            return self.entity_of(event)[1]
        elif "," in group_by:
            values = [event.get(f) for f in group_by.split(",")]
            return None if any(v is None or v == "" for v in values) else "|".join(map(str, values))
        else:
            value = event.get(group_by)
        if value is None and self.bucket.type == "secret":
            return event.endpoint or event.origin or None
        return None if value is None or value == "" else str(value)

    def entity_of(self, event: Event) -> tuple[str, str | None]:
        """(entity type, entity): a fixed type, or for ``auto`` the first of ip, user, endpoint."""
        if self.entity_type != "auto":
            return self.entity_type, self.entity(event)
        for kind, value in (("ip", event.ip), ("user", event.user), ("endpoint", event.endpoint)):
            if value:
                return kind, value
        return "endpoint", event.origin or None


_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_EVENT_ATTRS = frozenset(Event.__dataclass_fields__) - {"extra"}


class _Compiler:
    """Turns match mappings into one Python expression over the event ``e``.

    Only attribute names of :class:`Event` are written into the code; every value and
    every other field name goes in as a bound constant, so a rule file cannot inject code.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.consts: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def access(self, name: str) -> str:
        if name in _EVENT_ATTRS or name == "endpoint":
            return f"e.{name}"
        return f"e.extra.get({self.const(name)})"

    def test(self, name: str, spec: Any) -> str:
        acc = self.access(name)
        if isinstance(spec, list):
            try:
                return f"({acc} in {self.const(frozenset(spec))})"
            except TypeError:
                raise RuleError(f"{self.where}: field {name!r}: a list of plain values only") from None
        if isinstance(spec, bool) or spec is None:
            return f"({acc} is {self.const(spec)})"
        if not isinstance(spec, Mapping):
            return f"({acc} == {self.const(spec)})"
        parts: list[str] = []
        for key, value in spec.items():
            var = self.const(None)   # a fresh name for the walrus
            if key == "re":
                try:
                    pattern = re.compile(str(value))
                except re.error as exc:
                    raise RuleError(f"{self.where}: field {name!r}: bad regular expression: {exc}") from None
                parts.append(f"(isinstance(({var} := {acc}), str) and "
                             f"{self.const(pattern)}.search({var}) is not None)")
            elif key in _COMPARE:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise RuleError(f"{self.where}: field {name!r}: {key} needs a number")
                parts.append(f"(isinstance(({var} := {acc}), (int, float)) and not isinstance({var}, bool)"
                             f" and {var} {_COMPARE[key]} {self.const(value)})")
            elif key == "exists":
                parts.append(f"({acc} is {'not ' if value else ''}None)")
            elif key == "not":
                banned = frozenset(value) if isinstance(value, list) else frozenset([value])
                parts.append(f"({acc} not in {self.const(banned)})")
            else:
                raise RuleError(f"{self.where}: field {name!r}: unknown test {key!r} "
                                "(re, gt, gte, lt, lte, exists, not)")
        return " and ".join(parts) or "True"


def _predicate(alternatives: tuple[Mapping[str, Any], ...], where: str) -> Predicate:
    compiler = _Compiler(where)
    ors = []
    for alt in alternatives:
        ands = [compiler.test(str(k), v) for k, v in alt.items()]
        ors.append("(" + (" and ".join(ands) or "True") + ")")
    code = "lambda e: " + (" or ".join(ors) or "True")
    namespace = {"__builtins__": {}, "isinstance": isinstance, "str": str, "int": int,
                 "float": float, "bool": bool, **compiler.consts}
    predicate: Predicate = eval(  # noqa: S307  # nosec B307 - only Event attribute names are code
        compile(code, f"<rule {where}>", "eval"), namespace)
    return predicate


def _actions(alternatives: tuple[Mapping[str, Any], ...]) -> frozenset[str] | None:
    found: set[str] = set()
    for alt in alternatives:
        spec = alt.get("action")
        if isinstance(spec, str):
            found.add(spec)
        elif isinstance(spec, list) and all(isinstance(s, str) for s in spec):
            found.update(spec)
        else:
            return None
    return frozenset(found) if alternatives else None


def _number(data: Mapping[str, Any], key: str, where: str, default: float | None = None,
            positive: bool = True) -> float:
    value = data.get(key, default)
    if value is None:
        raise RuleError(f"{where}: bucket needs {key!r}")
    if not isinstance(value, int | float) or isinstance(value, bool) or (positive and value <= 0) \
            or value < 0:
        raise RuleError(f"{where}: bucket {key!r} must be a positive number")
    return float(value)


def _bucket(data: Any, where: str) -> Bucket:
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: 'bucket' must be a mapping")
    kind = data.get("type")
    if kind not in BUCKETS:
        raise RuleError(f"{where}: bucket type must be one of {', '.join(BUCKETS)}")
    window = _number(data, "window", where, 300)
    if kind == "counter":
        return Bucket(kind, window, int(_number(data, "threshold", where, positive=False)))
    if kind == "distinct":
        fld = data.get("field")
        if not isinstance(fld, str):
            raise RuleError(f"{where}: a distinct bucket needs 'field'")
        return Bucket(kind, window, int(_number(data, "threshold", where)), field=fld)
    if kind == "leaky":
        capacity, leak = _number(data, "capacity", where), _number(data, "leak", where)
        return Bucket(kind, capacity * leak, capacity=capacity, leak=leak)
    if kind == "conditional":
        raw = data.get("conditions")
        if not isinstance(raw, list) or not raw:
            raise RuleError(f"{where}: a conditional bucket needs a list of 'conditions'")
        conds = []
        for c in raw:
            if (not isinstance(c, list) or len(c) != 3 or c[1] not in OPS
                    or not isinstance(c[2], int | float) or not isinstance(c[0], str)
                    or not (c[0] in _BASE_METRICS or c[0].startswith("distinct_"))):
                raise RuleError(f"{where}: bad condition {c!r}: want [metric, op, number] with "
                                f"metric in {', '.join(_BASE_METRICS)} or distinct_<field>")
            conds.append((c[0], c[1], float(c[2])))
        return Bucket(kind, window, conditions=tuple(conds))
    if kind == "first_seen":
        fld = data.get("field", "ip")
        p4, p6 = int(data.get("cover_prefix", 32)), int(data.get("cover_prefix6", 128))
        if not (0 < p4 <= 32 and 0 < p6 <= 128):
            raise RuleError(f"{where}: cover_prefix must be 1-32 and cover_prefix6 1-128")
        return Bucket(kind, window, field=str(fld), cover_prefix=p4, cover_prefix6=p6)
    if kind == "secret":
        types = data.get("types", [])
        if not isinstance(types, list):
            raise RuleError(f"{where}: 'types' must be a list of DLP types")
        return Bucket(kind, window, types=tuple(str(t) for t in types))
    if kind == "baseline":
        interval = _number(data, "interval", where, 3600)
        sum_field = data.get("sum")
        if sum_field is not None and not isinstance(sum_field, str):
            raise RuleError(f"{where}: 'sum' must be a field name")
        alpha = _number(data, "alpha", where, 0.3)
        if alpha >= 1:
            raise RuleError(f"{where}: 'alpha' must be between 0 and 1")
        return Bucket(kind, interval, field=sum_field, sum=sum_field, alpha=alpha,
                      z=_number(data, "z", where, 4), ratio=_number(data, "ratio", where, 3),
                      min_value=_number(data, "min_value", where, 0, positive=False),
                      min_history=int(_number(data, "min_history", where, 3)))
    if kind == "new_hour":
        tolerance = int(_number(data, "tolerance", where, 1, positive=False))
        if tolerance > 11:
            raise RuleError(f"{where}: 'tolerance' must be 0-11 hours")
        return Bucket(kind, window, min_history=int(_number(data, "min_history", where, 20)),
                      tolerance=tolerance)
    if kind == "rare_template":
        return Bucket(kind, window, learn=_number(data, "learn", where, 3600, positive=False))
    return Bucket(kind, window)


def rule_from_mapping(data: Any, source: str = "") -> Rule:
    """Validate one rule mapping; :class:`RuleError` names the source and the reason."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
        raise RuleError(f"{source}: every rule needs an 'id'")
    where = f"{source}: rule {data['id']!r}"
    severity = data.get("severity")
    if severity not in SEVERITIES:
        raise RuleError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    group_by = data.get("group_by")
    if not isinstance(group_by, str) or not group_by:
        raise RuleError(f"{where}: needs 'group_by' (the entity field)")
    entity_type = data.get("entity_type", group_by)
    if entity_type not in ENTITY_TYPES:
        raise RuleError(f"{where}: entity_type must be one of {', '.join(ENTITY_TYPES)}")
    raw_match = data.get("match", {})
    alternatives = tuple(raw_match) if isinstance(raw_match, list) else (raw_match,)
    if not all(isinstance(a, Mapping) for a in alternatives):
        raise RuleError(f"{where}: 'match' must be a mapping or a list of mappings")
    mitre = data.get("mitre", [])
    if not isinstance(mitre, list) or not all(isinstance(t, str) and _MITRE.match(t) for t in mitre):
        raise RuleError(f"{where}: 'mitre' must be a list of ATT&CK technique ids (T1110.001)")
    unknown = set(data) - {"id", "title", "family", "severity", "enabled", "match", "group_by",
                           "entity_type", "bucket", "mitre", "incident_gap", "description",
                           "supersedes"}
    if unknown:
        raise RuleError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    supersedes = data.get("supersedes", [])
    if not isinstance(supersedes, list) or not all(isinstance(r, str) for r in supersedes):
        raise RuleError(f"{where}: 'supersedes' must be a list of rule ids")
    bucket = _bucket(data.get("bucket"), where)
    gap = data.get("incident_gap", bucket.window)
    if not isinstance(gap, int | float) or gap <= 0:
        raise RuleError(f"{where}: 'incident_gap' must be a positive number of seconds")
    return Rule(
        id=data["id"], title=str(data.get("title", data["id"])), severity=severity,
        bucket=bucket, group_by=group_by, entity_type=entity_type,
        family=str(data.get("family", "")), mitre=tuple(mitre),
        enabled=bool(data.get("enabled", True)), incident_gap=float(gap),
        match=alternatives, supersedes=tuple(supersedes), source=source,
        predicate=_predicate(alternatives, where), actions=_actions(alternatives),
        reads=frozenset(str(k) for alt in alternatives for k in alt))


def rules_from_text(text: str, source: str) -> list[Rule]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        raise RuleError(f"{source}: a rule file is a mapping with a list 'rules'")
    return [rule_from_mapping(r, source) for r in data["rules"]]


@dataclass
class RuleSet:
    """The rules in force: shipped ones overlaid by user files (same id replaces)."""

    rules: list[Rule]
    problems: list[str] = field(default_factory=list)   # "file: reason" of skipped files

    @property
    def enabled(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    @classmethod
    def shipped(cls) -> RuleSet:
        root = resources.files("secops.anomaly") / "shipped_rules"
        rules: list[Rule] = []
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if entry.name.endswith((".yaml", ".yml")):
                rules.extend(rules_from_text(entry.read_text(encoding="utf-8"), entry.name))
        _unique(rules)
        return cls(rules)

    @classmethod
    def load(cls, *dirs: str | Path, include_shipped: bool = True) -> RuleSet:
        """Shipped rules plus the rule files of ``dirs``; a bad file is skipped and reported."""
        from secops.anomaly.sigma import load_sigma  # heavy (pySigma), and it builds Rules

        by_id = {r.id: r for r in cls.shipped().rules} if include_shipped else {}
        sigma_rules, problems = load_sigma(*dirs) if dirs else ([], [])
        for raw in dirs:
            path = Path(raw)
            if not path.is_dir():
                raise RuleError(f"{path}: not a directory")
            for file in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")):
                try:
                    text = file.read_text(encoding="utf-8")
                    if _is_sigma(text):
                        continue   # Sigma rules are read by the Sigma loader
                    loaded = rules_from_text(text, str(file))
                    _unique(loaded)
                except (RuleError, OSError, UnicodeDecodeError) as exc:
                    problems.append(str(exc) if isinstance(exc, RuleError) else f"{file}: {exc}")
                    continue
                for rule in loaded:
                    by_id[rule.id] = rule
        for rule in sigma_rules:
            by_id[rule.id] = rule
        return cls(list(by_id.values()), problems)


def _is_sigma(text: str) -> bool:
    return bool(re.search(r"^(?:detection|correlation):", text, re.M))


def _unique(rules: Iterable[Rule]) -> None:
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise RuleError(f"{r.source}: rule id {r.id!r} is also in {seen[r.id]}")
        seen[r.id] = r.source
