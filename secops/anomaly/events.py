"""The normalised event every parser produces and every rule reads.

``action`` says what happened, independent of the log format: ``login`` (an
authentication attempt; ``success`` says how it ended), ``invalid_user``, ``sudo``
(``success`` False for a failed sudo authentication or a refused command), ``request``
(an HTTP request: ``method``, ``path``, ``status``, ``bytes``), ``other`` for lines of a
known format that no rule models, and for JSON lines the value of their event field.
``level`` is ``"error"`` for error-level lines: syslog messages that report an error,
JSON lines whose level or severity is error or worse, HTTP responses of 500 and up.
Times are UTC seconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOGIN_ACTIONS = frozenset({"login", "auth", "authentication", "signin", "sign_in", "logon",
                           "ssh_login"})


@dataclass(slots=True)
class Event:
    ts: float
    action: str
    raw: str
    source: str = ""          # "auth", "http" or "json": the format it came from
    origin: str = ""          # file name (or stream name) it was read from
    success: bool | None = None
    ip: str | None = None
    user: str | None = None
    host: str | None = None
    service: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    bytes: int | None = None
    role: str | None = None
    mfa: bool | None = None
    level: str | None = None   # "error" for error-level lines (see the parsers)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str | None:
        """What was accessed: the URL path, or ``service@host`` for a system service."""
        if self.path is not None:
            return self.path
        if "endpoint" in self.extra:
            return str(self.extra["endpoint"])
        if self.service is not None:
            return f"{self.service}@{self.host}" if self.host else self.service
        return None

    @property
    def message(self) -> str:
        """The line's text without time and address noise, for template mining."""
        if self.source == "http":
            return f"{self.method} {self.path} {self.status}"
        text = self.extra.get("message") or self.extra.get("msg")
        if isinstance(text, str):
            return text
        if self.source == "auth":
            head, _, msg = self.raw.partition(": ")
            return f"{self.service}: {msg}" if msg else self.raw
        return self.action

    def get(self, name: str) -> Any:
        """A field by name (attribute, ``endpoint``, or a JSON line's extra key)."""
        if name == "endpoint":
            return self.endpoint
        if name in _ATTRS:
            return getattr(self, name)
        return self.extra.get(name)


_ATTRS = frozenset(Event.__dataclass_fields__) - {"extra"}

# A request of an access log that only baseline rules read, as the fast path carries it
# instead of an Event (see ``LineReader.light`` and ``Detector.light_plan``):
# ``(ts, path, line, plan, bytes, origin)``.
LightRequest = tuple[float, str, str, Any, int, str]
# What the readers give a detector: events, and light requests where its plan asked.
Item = Event | LightRequest
