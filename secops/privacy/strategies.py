"""Erase strategies: a named registry of what happens to a personal field.

A strategy turns a field's value into its erased value and tells whether a value is
already erased (the verification pass and re-runs rely on it, so applying a strategy
twice changes nothing)::

    null    -> NULL
    redact  -> the fixed marker "[REDACTED]"
    hash    -> "hmac:" + 32 hex digits of HMAC-SHA256(key, value): the same value always
               gives the same pseudonym, which cannot be reversed without the key
    keep    -> unchanged (kept on purpose: not personal on its own, or needed)

Deleting the whole row is the table's ``erase: delete``, not a field strategy.
Strategies are looked up by name in :data:`STRATEGIES`; :func:`register` adds one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any, Protocol

REDACTED = "[REDACTED]"
PSEUDONYM = re.compile(r"hmac:[0-9a-f]{32}")


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def text_only(self) -> bool:
        """The column must hold text."""
        ...

    @property
    def nullable(self) -> bool:
        """The column must accept NULL."""
        ...

    def apply(self, value: Any, key: bytes) -> Any: ...

    def erased(self, value: Any) -> bool: ...


@dataclass(frozen=True, slots=True)
class NullStrategy:
    name: str = "null"
    text_only: bool = False
    nullable: bool = True

    def apply(self, value: Any, key: bytes) -> Any:
        return None

    def erased(self, value: Any) -> bool:
        return value is None


@dataclass(frozen=True, slots=True)
class RedactStrategy:
    name: str = "redact"
    text_only: bool = True
    nullable: bool = False

    def apply(self, value: Any, key: bytes) -> Any:
        return None if value is None else REDACTED

    def erased(self, value: Any) -> bool:
        return value is None or value == REDACTED


@dataclass(frozen=True, slots=True)
class HashStrategy:
    name: str = "hash"
    text_only: bool = True
    nullable: bool = False

    def apply(self, value: Any, key: bytes) -> Any:
        if value is None or self.erased(value):
            return value
        return pseudonym(key, str(value))

    def erased(self, value: Any) -> bool:
        return value is None or (isinstance(value, str) and PSEUDONYM.fullmatch(value) is not None)


@dataclass(frozen=True, slots=True)
class KeepStrategy:
    name: str = "keep"
    text_only: bool = False
    nullable: bool = False

    def apply(self, value: Any, key: bytes) -> Any:
        return value

    def erased(self, value: Any) -> bool:
        return True


def pseudonym(key: bytes, value: str) -> str:
    """The keyed pseudonym of a value (stable for one key)."""
    return "hmac:" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> None:
    """Add a strategy under its name (a later one with the same name replaces it)."""
    STRATEGIES[strategy.name] = strategy


_BUILTIN: tuple[Strategy, ...] = (NullStrategy(), RedactStrategy(), HashStrategy(), KeepStrategy())
for _s in _BUILTIN:
    register(_s)
