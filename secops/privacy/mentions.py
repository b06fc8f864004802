"""Mentions: other subjects' free text that names the subject.

A support ticket written by Bob may quote Alice's e-mail address. Such a row is not
Alice's data to erase (it is Bob's ticket), but a reviewer must see it. For every field
of category ``free_text``, candidate rows are fetched with a case-insensitive substring
search in the store (the identity value itself, and for phone-like values their last
four digits, so other spellings of the number are found too); each candidate's text is
then checked by exact, case-insensitive matching, by the DLP engine's detectors
(e-mail addresses, phone numbers and IP addresses compared in normal form: digits of a
phone number, case of an address), and for phone identities by the digits of every
run of digits and separators in the text (so ``020 7946 0958`` is found for
``+44 20 7946 0958``: the last nine digits agree). Rows linked to the subject are never mentions.
Mentions are reported, never erased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from secops.dlp import Classifier
from secops.privacy.datamap import FREE_TEXT, Store
from secops.privacy.graph import Linked, Subject, row_key
from secops.privacy.ports import StoreSession

_DIGITS = re.compile(r"\d")
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-]{7,}")
_NUMBER_RUN = re.compile(r"\+?\d[\d \t().\-]{5,}\d")
DETECTED_TYPES = ("email", "phone_number", "ip_address")


@dataclass(frozen=True, slots=True)
class Mention:
    store: str
    table: str
    primary_key: dict[str, Any]
    column: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "table": self.table,
            "primary_key": self.primary_key,
            "column": self.column,
        }


def _digits(text: str) -> str:
    return "".join(_DIGITS.findall(text))


def _needles(value: str) -> list[str]:
    needles = [value]
    if _PHONE_LIKE.fullmatch(value) and len(_digits(value)) >= 7:
        needles.append(_digits(value)[-4:])
    return needles


def same_value(found: str, value: str) -> bool:
    if found.casefold() == value.casefold():
        return True
    a, b = _digits(found), _digits(value)
    if len(a) >= 7 and len(b) >= 7 and _PHONE_LIKE.fullmatch(value):
        return a == b or (len(a) >= 9 and len(b) >= 9 and a[-9:] == b[-9:])
    return False


@lru_cache(maxsize=1)
def default_classifier() -> Classifier:
    """The DLP classifier with the default policy, built once (compiling it takes a while)."""
    return Classifier()


class MentionFinder:
    """Finds mentions with one DLP classifier (built once: its patterns are compiled)."""

    def __init__(self, classifier: Classifier | None = None) -> None:
        self.classifier = classifier or default_classifier()

    def names(self, text: str, values: list[str]) -> bool:
        """True when ``text`` contains one of ``values`` exactly or as a detected value."""
        folded = text.casefold()
        if any(v.casefold() in folded for v in values):
            return True
        for finding in self.classifier.scan_text(text).findings:
            if finding.type in DETECTED_TYPES:
                found = text[finding.start : finding.end]
                if any(same_value(found, v) for v in values):
                    return True
        phones = [v for v in values if _PHONE_LIKE.fullmatch(v)]
        return bool(phones) and any(
            same_value(run.group(), v) for run in _NUMBER_RUN.finditer(text) for v in phones
        )

    def find(self, store: Store, subject: Subject, linked: Linked, session: StoreSession) -> list[Mention]:
        values = [v for v in subject.values() if v]
        needles = [n for v in values for n in _needles(v)]
        out: list[Mention] = []
        for table in store.tables.values():
            own = linked.rows.get(table.name, {})
            for column, f in table.fields.items():
                if f.category != FREE_TEXT:
                    continue
                for row in session.rows_containing(table.name, column, needles):
                    key = row_key(table, row)
                    text = row.get(column)
                    if key in own or not isinstance(text, str):
                        continue
                    if self.names(text, values):
                        out.append(
                            Mention(
                                store.name, table.name, dict(zip(table.primary_key, key, strict=True)), column
                            )
                        )
        return out
