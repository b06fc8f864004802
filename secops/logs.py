"""Structured logs: one JSON object per line, passed through a redaction filter.

The filter removes every secret value read through ``secops.config.read_secret``
(they are registered here as they are read), bearer tokens and ``Authorization``
values, SecOps API keys, passwords in URLs and ``password=``/``secret=`` pairs, and
whatever the DLP engine's SECRET-category detectors recognise (cloud keys, GitHub,
Slack and Stripe tokens, JWTs, private keys, URL passwords), from the message, its
arguments and any exception text, before a handler sees them. The DLP detectors run
only when one of their literal anchors occurs in the line (context words for the AWS
secret key), so an ordinary log line costs a few substring checks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"
_PATTERNS = [
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:bearer\s+|basic\s+)?[^\s,;\"']+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer " + REDACTED),
    (re.compile(r"secops_[a-z0-9]{8}_[A-Za-z0-9_-]{43}"), REDACTED),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)\b((?:password|passwd|pwd|secret|token|api_key|apikey)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+"),
     r"\1" + REDACTED),
]
_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()  # _secrets, longest first (sorted once, not per line)
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember a secret value so that no log line can carry it."""
    global _longest_first
    if len(value) >= 4:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    for value in _longest_first:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _redact_dlp_secrets(text)


def _secret_detectors() -> tuple[Any, ...]:
    global _DETECTORS
    if _DETECTORS is None:
        try:
            from secops.dlp.detectors import BUILTIN
        except ImportError:  # the DLP engine is optional for logging
            _DETECTORS = ()
        else:
            _DETECTORS = tuple(d for d in BUILTIN if d.category == "SECRET")
    return _DETECTORS


_DETECTORS: tuple[Any, ...] | None = None


def _redact_dlp_secrets(text: str) -> str:
    """Replace every span a DLP SECRET detector accepts (validated, not just pattern-shaped)."""
    lower: str | None = None
    spans: list[tuple[int, int]] = []
    for detector in _secret_detectors():
        if detector.literals and not any(lit in text for lit in detector.literals):
            continue
        if detector.near:
            lower = lower if lower is not None else text.lower()
            if not any(word in lower for word in detector.near):
                continue
        for match in detector.pattern.finditer(text):
            try:
                value = match.group(detector.group)
                accepted = value is not None and detector.check(value) is not None
            except Exception:  # noqa: BLE001 - a validator's failure must not lose a log line
                accepted = False
            if accepted:
                spans.append(match.span(detector.group))
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + REDACTED + text[end:]
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record in place so every handler and formatter sees the redacted text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return redact(json.dumps(data, default=str))


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON lines on stderr for the whole process, through the redaction filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Celery's per-task INFO lines repeat ours and print task arguments and return values
    # (job results may hold findings): keep only their warnings and errors.
    # httpx and httpcore log every request's full URL (a webhook URL carries its token in
    # the path) at INFO and DEBUG: only their warnings and errors either.
    for name in ("celery.app.trace", "celery.worker.strategy", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
