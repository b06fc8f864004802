"""Masking strategies, keyed hashes and redaction of text.

Strategies are a named registry (``type`` → ``[EMAIL]``, ``mask`` → a format-preserving
mask such as ``****-****-****-1234`` or ``j***@example.com``), so policies and callers
pick them by name. A mask keeps at most what card and identity standards allow to be
shown (last four digits of a card or SSN, first letter of a mailbox, the domain) and
never the content of a secret; ``redact`` only needs offsets, so it works on stored
findings without the original values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

from secops.dlp.validators import digits

Style = Literal["type", "mask", "policy"]


class _Span(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def action(self) -> str: ...


_ALNUM = re.compile(r"[A-Za-z0-9]")
_DIGIT = re.compile(r"\d")


_STARS = {
    _ALNUM: ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
             str.maketrans(dict.fromkeys(
                 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "*"))),
    _DIGIT: ("0123456789", str.maketrans(dict.fromkeys("0123456789", "*"))),
}
"""For an ASCII value: the characters each pattern matches, and a table that hides them."""


def _keep_last(value: str, keep: int, pattern: re.Pattern[str] = _ALNUM) -> str:
    """Replace matching characters by '*' except the last ``keep`` of them."""
    stars = _STARS.get(pattern)
    if stars is not None and value.isascii():
        shown, table = stars
        cut, seen = len(value), 0
        while seen < keep:  # back to the first of the last ``keep`` matching characters
            if cut == 0:
                return value  # at most ``keep`` of them: nothing to hide
            cut -= 1
            if value[cut] in shown:
                seen += 1
        return value[:cut].translate(table) + value[cut:]
    hidden = [m.start() for m in pattern.finditer(value)]
    del hidden[max(0, len(hidden) - keep):]
    if not hidden:
        return value
    chars = list(value)
    for i in hidden:
        chars[i] = "*"
    return "".join(chars)


def _keeping_last(keep: int, pattern: re.Pattern[str] = _ALNUM) -> Callable[[str], str]:
    """``_keep_last(value, keep, pattern)`` as a function of the value, its common case
    (an ASCII value ending in ``keep`` matching characters) inline."""
    table = _STARS[pattern][1]
    tail_matches = str.isdigit if pattern is _DIGIT else str.isalnum

    def mask(value: str) -> str:
        cut = len(value) - keep
        if cut >= 0 and value.isascii():
            tail = value[cut:]
            if tail_matches(tail):
                return value[:cut].translate(table) + tail
        return _keep_last(value, keep, pattern)

    return mask


_DIGITS_KEEP_4 = _keeping_last(4, _DIGIT)
_ALNUM_KEEP_4 = _keeping_last(4)


def _mask_iban(value: str) -> str:
    return value[:2] + _ALNUM_KEEP_4(value[2:])


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _mask_ip(value: str) -> str:
    if ":" in value:
        return value.split(":", 1)[0] + ":****"
    return value.split(".", 1)[0] + ".***.***.***"


def _mask_secret(value: str) -> str:
    prefix = re.match(r"(?:[a-z]{2,4}_(?:live_|test_|pat_)?|xox[a-z]-|AKIA|ASIA|AIza|eyJ)", value)
    return (prefix.group(0) if prefix else "") + "********"


_MASKERS: dict[str, Callable[[str], str]] = {
    "credit_card": _DIGITS_KEEP_4,
    "us_ssn": _DIGITS_KEEP_4,
    "phone_number": _keeping_last(2, _DIGIT),
    "iban": _mask_iban,
    "uk_nino": _keeping_last(1),
    "us_npi": _DIGITS_KEEP_4,
    "us_mbi": _ALNUM_KEEP_4,
    "email": _mask_email,
    "ip_address": _mask_ip,
    "private_key": lambda v: "[PRIVATE_KEY]",
    "password_in_url": lambda v: "********",
}


def mask(type_: str, value: str, category: str = "") -> str:
    """Format-preserving mask of a value; secrets keep only their public prefix."""
    return masker(type_, category)(value)


def masker(type_: str, category: str = "") -> Callable[[str], str]:
    """The function :func:`mask` applies to values of this type and category."""
    found = _MASKERS.get(type_)
    if found is not None:
        return found
    return _mask_secret if category == "SECRET" else _mask_other


def _mask_other(value: str) -> str:
    return _ALNUM_KEEP_4(value) if len(value) > 8 else "*" * len(value)


def label(type_: str) -> str:
    return f"[{type_.upper()}]"


def normalise(type_: str, value: str) -> str:
    """Canonical form hashed for a finding, so ``4111 1111...`` and ``4111-1111...`` agree."""
    if type_ in {"credit_card", "us_ssn", "us_npi", "phone_number"}:
        return digits(value)
    if type_ in {"iban", "uk_nino", "us_mbi"}:
        return re.sub(r"[\s-]", "", value).upper()
    if type_ in {"email", "ip_address"}:
        return value.lower()
    return value


def keyed_hash(key: bytes, type_: str, value: str) -> str:
    """HMAC-SHA256 of the normalised value: joinable across documents, not reversible."""
    message = f"{type_}:{normalise(type_, value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def redact(text: str, findings: Iterable[_Span], style: Style = "type") -> str:
    """Return ``text`` with every finding replaced.

    ``type`` writes ``[TYPE]``; ``mask`` writes a format-preserving mask; ``policy``
    masks findings whose action is ``mask`` and labels the rest (``report`` and
    ``block`` findings are still removed: redacted output never holds a value).
    Overlapping spans are merged so no fragment of a value survives.
    """
    spans = sorted(findings, key=lambda f: (f.start, -f.end))
    out: list[str] = []
    pos = 0
    for f in spans:
        if f.end <= pos:
            continue
        start = max(f.start, pos)
        out.append(text[pos:start])
        value = text[start : f.end]
        use_mask = style == "mask" or (style == "policy" and f.action == "mask")
        if use_mask and start == f.start:
            out.append(mask(f.type, value, str(getattr(f, "category", ""))))
        else:
            out.append(label(f.type))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)
