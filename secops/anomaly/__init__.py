# ruff: noqa: E402  (the compiled-module check runs before the engine is imported)
"""Anomaly detection over logs: parsers, rules as data, windowed buckets, incidents.

Pure domain code (no database, no network, no settings): callers hand in log lines or
events and get :class:`Alert` objects back.

Data model::

    log lines ── parsers (syslog auth.log, combined access log, JSON lines; detect_format)
        -> Event(ts, action, success, ip, user, endpoint, status, bytes, ..., raw)
    RuleSet (YAML rules: shipped_rules/ + user folders) -> Rule(match, group_by, bucket)
    Detector(rules, store=WindowStore, baseline_ips=...)
        .feed(event) ... .finish() -> [Alert(rule, severity, entity, entity_type,
                                             start, end, count, evidence, mitre)]

Windows live behind the :class:`WindowStore` protocol (:class:`MemoryStore` here; the
platform's lives in Redis). Memory is bounded by the number of entities active within
a window, not by input size; evidence is bounded per alert.

The hot modules can run compiled (Cython, from this same source; see setup.py);
:mod:`secops.anomaly._native` falls back to the source for any module edited since.
"""

from secops.anomaly import _native

_native.install()

from secops.anomaly.detector import Alert, Detector
from secops.anomaly.errors import AnomalyError, FormatError, RuleError
from secops.anomaly.events import Event
from secops.anomaly.parsers import (
    CombinedParser,
    JsonLinesParser,
    LineReader,
    Malformed,
    ParseStats,
    SyslogAuthParser,
    detect_format,
    make_parser,
)
from secops.anomaly.rules import Rule, RuleSet, rule_from_mapping
from secops.anomaly.store import MemoryStore, WindowStore

__all__ = [
    "Alert",
    "AnomalyError",
    "CombinedParser",
    "Detector",
    "Event",
    "FormatError",
    "JsonLinesParser",
    "LineReader",
    "Malformed",
    "MemoryStore",
    "ParseStats",
    "Rule",
    "RuleError",
    "RuleSet",
    "SyslogAuthParser",
    "WindowStore",
    "detect_format",
    "make_parser",
    "rule_from_mapping",
]
