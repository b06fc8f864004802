"""Sigma rules evaluated in the engine: pySigma parses them, we match events ourselves.

A Sigma rule's condition tree (pySigma resolves ``1 of``/``all of``, modifiers such as
``contains``, ``startswith``, ``endswith``, ``re``, ``cidr``, ``gt``/``lt``, ``exists``,
``cased``, and value lists) becomes a predicate over :class:`Event`. Field names are
mapped to the event's fields (``FIELD_ALIASES``; anything else is a JSON line's own
key); keyword selections (no field) search the raw line. String matches are
case-insensitive unless ``|cased``, as Sigma specifies.

A single-event rule alerts on every match (one alert per entity while matches keep
coming within ``SIGMA_GAP``), with its ``level`` as severity (``informational`` is
``low``) and its ``attack.tNNNN`` tags as ATT&CK techniques. Correlation rules become
buckets over the matches of the rules they reference, grouped by their ``group-by``
fields within their ``timespan``: ``event_count``/``value_count`` above a bound (``gt``,
``gte``) counter and distinct buckets (sliding), ``temporal``/``temporal_ordered``
temporal buckets, and every other condition (``lt``, ``lte``, ``eq``, ``neq``) and the
``value_sum``, ``value_avg``, ``value_percentile`` and ``value_median`` types aggregate
buckets judged on timespan-aligned windows when they end. A correlation may reference
correlations: each time one fires, the event that made it fire becomes a
``sigma_correlation`` event of it. Referenced rules alert on their own only with
``generate: true``. Files or rules that cannot be used are reported with
the file and the reason and skipped.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import (
    SigmaCorrelationConditionOperator as CorrOp,
)
from sigma.correlations import (
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
)

from secops.anomaly.detector import CORRELATION_ACTION
from secops.anomaly.events import Event
from secops.anomaly.rules import Bucket, Predicate, Rule

SIGMA_GAP = 600.0
LEVELS = {"informational": "low", "low": "low", "medium": "medium", "high": "high",
          "critical": "critical"}
FIELD_ALIASES = {
    "ip": "ip", "src_ip": "ip", "source.ip": "ip", "sourceip": "ip", "c-ip": "ip",
    "clientip": "ip", "client_ip": "ip", "ipaddress": "ip", "rhost": "ip",
    "user": "user", "username": "user", "user.name": "user", "targetusername": "user",
    "subjectusername": "user", "cs-username": "user",
    "path": "path", "cs-uri-stem": "path", "c-uri": "path", "uri": "path", "url.path": "path",
    "status": "status", "sc-status": "status", "http.response.status_code": "status",
    "method": "method", "cs-method": "method", "http.request.method": "method",
    "bytes": "bytes", "sc-bytes": "bytes", "host": "host", "hostname": "host",
    "computer": "host", "service": "service", "program": "service", "event": "action",
    "action": "action", "event.action": "action", "success": "success", "role": "role",
    "mfa": "mfa", "level": "level", "endpoint": "endpoint",
    "c-useragent": "user_agent", "cs-user-agent": "user_agent", "useragent": "user_agent",
    "user_agent.original": "user_agent", "message": "message", "msg": "message",
}
_OPS: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b, CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b, CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


class SigmaUnsupported(ValueError):
    """A Sigma construct the engine does not evaluate (the rule is skipped)."""


class _Later(Exception):
    """A correlation referencing one not loaded yet."""


def field_name(name: str) -> str:
    return FIELD_ALIASES.get(name.lower(), name)


def _getter(name: str) -> Callable[[Event], Any]:
    mapped = field_name(name)
    if mapped == "message":
        return lambda e: e.extra.get("message", e.extra.get("msg", e.raw))
    if mapped == "user_agent":
        return lambda e: e.extra.get("user_agent")
    return lambda e: e.get(mapped)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value_test(value: Any, get: Callable[[Event], Any]) -> Predicate:  # noqa: C901 - one per type
    if isinstance(value, SigmaExpansion):
        tests = [_value_test(v, get) for v in value.values]
        return lambda e: any(t(e) for t in tests)
    if isinstance(value, SigmaNull):
        return lambda e: get(e) is None
    if isinstance(value, SigmaExists):
        want = bool(value.exists)
        return lambda e: (get(e) is not None) is want
    if isinstance(value, SigmaBool):
        want_bool = bool(value.boolean)
        return lambda e: get(e) is want_bool or _text(get(e)) == str(want_bool).lower()
    if isinstance(value, SigmaNumber):
        number = value.number
        return lambda e: (v := get(e)) is not None and not isinstance(v, bool) and (
            v == number if isinstance(v, int | float) else _text(v) == str(number))
    if isinstance(value, SigmaCompareExpression):
        op, bound = _OPS[value.op], value.number.number
        return lambda e: isinstance(v := get(e), int | float) and not isinstance(v, bool) and op(v, bound)
    if isinstance(value, SigmaRegularExpression):
        flags = 0
        for flag in value.flags:
            flags |= SigmaRegularExpression.sigma_to_python_flags[flag]
        if SigmaRegularExpressionFlag.IGNORECASE in value.flags:
            flags |= re.IGNORECASE
        pattern = re.compile(str(value.regexp), flags)
        return lambda e: (v := _text(get(e))) is not None and pattern.search(v) is not None
    if isinstance(value, SigmaCIDRExpression):
        network = value.network

        def in_network(e: Event) -> bool:
            try:
                return ipaddress.ip_address(str(get(e))) in network
            except ValueError:
                return False
        return in_network
    if isinstance(value, SigmaFieldReference):
        other = _getter(value.field)
        return lambda e: get(e) is not None and _text(get(e)) == _text(other(e))
    if isinstance(value, SigmaString):
        cased = isinstance(value, SigmaCasedString)
        if not value.contains_special():
            plain = value.to_plain()
            if cased:
                return lambda e: _text(get(e)) == plain
            low = plain.lower()
            return lambda e: (v := _text(get(e))) is not None and v.lower() == low
        pattern = re.compile(str(value.to_regex().regexp), re.S | (0 if cased else re.I))
        return lambda e: (v := _text(get(e))) is not None and pattern.fullmatch(v) is not None
    raise SigmaUnsupported(f"value type {type(value).__name__} is not supported")


def _keyword_test(value: Any) -> Predicate:
    """A keyword (no field): a case-insensitive search of the raw line."""
    if isinstance(value, SigmaString) and value.contains_special():
        pattern = re.compile(".*" + str(value.to_regex().regexp) + ".*", re.S | re.I)
        return lambda e: pattern.fullmatch(e.raw) is not None
    if isinstance(value, SigmaString | SigmaNumber):
        needle = str(value.to_plain() if isinstance(value, SigmaString) else value.number).lower()
        return lambda e: needle in e.raw.lower()
    if isinstance(value, SigmaRegularExpression):
        pattern = re.compile(str(value.regexp))
        return lambda e: pattern.search(e.raw) is not None
    raise SigmaUnsupported(f"keyword of type {type(value).__name__} is not supported")


def compile_condition(node: Any) -> Predicate:
    if isinstance(node, ConditionAND):
        parts = [compile_condition(a) for a in node.args]
        return lambda e: all(p(e) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [compile_condition(a) for a in node.args]
        return lambda e: any(p(e) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda e: not inner(e)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _value_test(node.value, _getter(node.field))
    if isinstance(node, ConditionValueExpression):
        return _keyword_test(node.value)
    raise SigmaUnsupported(f"condition element {type(node).__name__} is not supported")


def _rule_predicate(rule: SigmaRule) -> Predicate:
    conditions = [compile_condition(c.parse()) for c in rule.detection.parsed_condition]
    if len(conditions) == 1:
        return conditions[0]
    return lambda e: any(c(e) for c in conditions)


def _mitre(rule: SigmaRule | SigmaCorrelationRule) -> tuple[str, ...]:
    found = []
    for tag in rule.tags:
        if tag.namespace == "attack" and re.fullmatch(r"t\d{4}(?:\.\d{3})?", tag.name):
            found.append(tag.name.upper())
    return tuple(found)


def _ident(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return "sigma:" + (rule.name or (str(rule.id) if rule.id else rule.title))


def _entity_type(fields: list[str]) -> str:
    mapped = field_name(fields[0]) if fields else ""
    return mapped if mapped in ("ip", "user") else "endpoint"


_CORR_OPS = {CorrOp.GT: ">", CorrOp.GTE: ">=", CorrOp.LT: "<", CorrOp.LTE: "<=",
             CorrOp.EQ: "==", CorrOp.NEQ: "!="}
_AGGREGATES = {SigmaCorrelationType.EVENT_COUNT: "count",
               SigmaCorrelationType.VALUE_COUNT: "distinct",
               SigmaCorrelationType.VALUE_SUM: "sum", SigmaCorrelationType.VALUE_AVG: "avg",
               SigmaCorrelationType.VALUE_PERCENTILE: "percentile",
               SigmaCorrelationType.VALUE_MEDIAN: "percentile"}


def _plain(predicate: Predicate) -> Predicate:
    return lambda e: e.action != CORRELATION_ACTION and predicate(e)


def _fired(ident: str) -> Predicate:
    return lambda e: e.action == CORRELATION_ACTION and e.extra.get("sigma_rule") == ident


def _correlation(corr: SigmaCorrelationRule, predicates: dict[str, Predicate],
                 where: str, correlations: set[str] | None = None) -> Rule:
    """The engine's rule for a correlation. ``correlations``: idents of correlation rules
    already loaded, which this one may reference (their firings are its events)."""
    refs = corr.rules or []
    preds = []
    for ref in refs:
        target = ref.rule
        ident = _ident(target)
        if isinstance(target, SigmaCorrelationRule):
            if correlations is None or ident not in correlations:
                raise SigmaUnsupported(f"referenced correlation {ref.reference!r} could not be used")
            preds.append(_fired(ident))
        else:
            preds.append(_plain(predicates[ident]))
    window = float(corr.timespan.seconds)
    group = [field_name(f) for f in (corr.group_by or [])]
    cond = corr.condition
    kind = corr.type
    op = _CORR_OPS.get(getattr(cond, "op", None))  # type: ignore[arg-type]
    if kind in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
        bucket = Bucket("temporal", window, ordered=kind == SigmaCorrelationType.TEMPORAL_ORDERED,
                        predicates=tuple(preds))
    elif kind not in _AGGREGATES or op is None:
        raise SigmaUnsupported(f"correlation type {kind.name.lower()} is not supported")
    elif kind in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT) \
            and op in (">", ">="):
        # a count above a bound alerts as soon as the sliding window reaches it
        count = int(getattr(cond, "count", 0))
        threshold = count - 1 if op == ">=" else count
        if kind == SigmaCorrelationType.EVENT_COUNT:
            bucket = Bucket("counter", window, max(0, threshold))
        else:
            fieldref = getattr(cond, "fieldref", None)
            if not isinstance(fieldref, str):
                raise SigmaUnsupported("value_count needs one condition field")
            bucket = Bucket("distinct", window, max(0, threshold), field=field_name(fieldref))
    else:
        # below a bound, equal to one, or a sum, mean or percentile: judged on each
        # timespan-aligned window of a group when it ends (as SIEM backends bin time)
        fieldref = getattr(cond, "fieldref", None)
        if kind != SigmaCorrelationType.EVENT_COUNT and not isinstance(fieldref, str):
            raise SigmaUnsupported(f"{kind.name.lower()} needs one condition field")
        percentile = 50.0 if kind == SigmaCorrelationType.VALUE_MEDIAN else float(
            getattr(cond, "percentile", None) or 0)
        if kind == SigmaCorrelationType.VALUE_PERCENTILE and not 0 < percentile <= 100:
            raise SigmaUnsupported("value_percentile needs a percentile between 1 and 100")
        bucket = Bucket("aggregate", window, field=field_name(fieldref) if fieldref else None,
                        agg=_AGGREGATES[kind], op=op, bound=float(getattr(cond, "count", 0)),
                        percentile=percentile)
    level = corr.level.name.lower() if corr.level else "medium"
    return Rule(id=_ident(corr), title=corr.title, severity=LEVELS.get(level, "medium"),
                bucket=bucket, group_by=",".join(group) or "auto",
                entity_type=_entity_type(group), family="sigma", mitre=_mitre(corr),
                incident_gap=window, source=where,
                predicate=lambda e: any(p(e) for p in preds), actions=None)


def load_sigma(*dirs: str | Path) -> tuple[list[Rule], list[str]]:
    """Rules from the Sigma files of ``dirs`` and the problems (``file: reason``) skipped."""
    problems: list[str] = []
    found: list[tuple[SigmaRule | SigmaCorrelationRule, str]] = []
    for raw in dirs:
        for file in sorted(p for p in Path(raw).rglob("*") if p.suffix in (".yml", ".yaml")):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{file}: {exc}")
                continue
            if not re.search(r"^(?:detection|correlation):", text, re.M):
                continue
            try:
                collection = SigmaCollection.from_yaml(text, resolve_references=False)
            except SigmaError as exc:
                problems.append(f"{file}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - pySigma raises more than SigmaError on bad YAML
                problems.append(f"{file}: {type(exc).__name__}: {exc}")
                continue
            found.extend((r, str(file)) for r in collection.rules)
    rules: list[Rule] = []
    predicates: dict[str, Predicate] = {}
    generate: dict[str, bool] = {}
    plain = [(r, w) for r, w in found if isinstance(r, SigmaRule)]
    for rule, where in plain:
        try:
            predicates[_ident(rule)] = _rule_predicate(rule)
        except (SigmaError, SigmaUnsupported, re.error) as exc:
            problems.append(f"{where}: rule {rule.title!r}: {exc}")
    collection = SigmaCollection([r for r, _ in found], resolve_references=False)
    pending = [(c, w) for c, w in found if isinstance(c, SigmaCorrelationRule)]
    loaded: dict[str, Rule] = {}
    failed: dict[str, str] = {}
    while pending:   # a correlation after the correlations it references
        waiting = []
        for corr, where in pending:
            try:
                for ref in corr.rules or []:
                    ref.resolve(collection)
                    ident = _ident(ref.rule)
                    if isinstance(ref.rule, SigmaCorrelationRule):
                        if ident in failed:
                            raise SigmaUnsupported(f"referenced correlation {ref.reference!r} "
                                                   f"could not be used")
                        if ident not in loaded:
                            raise _Later
                    elif ident not in predicates:
                        raise SigmaUnsupported(f"referenced rule {ref.reference!r} could not be used")
                loaded[_ident(corr)] = _correlation(corr, predicates, where, set(loaded))
            except _Later:
                waiting.append((corr, where))
                continue
            except (SigmaError, SigmaUnsupported) as exc:
                problems.append(f"{where}: correlation {corr.title!r}: {exc}")
                failed[_ident(corr)] = str(exc)
                continue
            for ref in corr.rules or []:
                generate[_ident(ref.rule)] = generate.get(_ident(ref.rule), False) or corr.generate
        if len(waiting) == len(pending):   # a loop of references
            for corr, where in waiting:
                problems.append(f"{where}: correlation {corr.title!r}: references form a loop")
            break
        pending = waiting
    for ident, made in loaded.items():
        if ident in generate:   # referenced by another correlation: it feeds it
            made = dataclasses.replace(made, emits=True, silent=not generate[ident])
        rules.append(made)
    referenced = set(generate)
    for rule, where in plain:
        ident = _ident(rule)
        if ident not in predicates or (ident in referenced and not generate[ident]):
            continue
        level = rule.level.name.lower() if rule.level else "medium"
        rules.append(Rule(id=ident, title=rule.title, severity=LEVELS.get(level, "medium"),
                          bucket=Bucket("each", SIGMA_GAP), group_by="auto", entity_type="auto",
                          family="sigma", mitre=_mitre(rule), incident_gap=SIGMA_GAP,
                          source=where, predicate=predicates[ident], actions=None))
    return rules, problems
