"""The link graph: which rows of a store belong to a data subject.

A row is *linked* to a subject when one of its identity columns equals one of the
subject's identity values, or when one of its ``references`` columns holds the value
of the referenced column of a linked row. Tables are walked parents first (the map's
topological order), so links reach any depth in one pass; cycles are refused when the
map is loaded. Identity values match exactly (as stored).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from secops.privacy.datamap import DataMap, Store, Table
from secops.privacy.errors import PrivacyError
from secops.privacy.ports import Key, Row, StoreSession

Subject = Mapping[str, str]


def parse_identities(pairs: list[str] | tuple[str, ...], datamap: DataMap) -> dict[str, str]:
    """``TYPE=VALUE`` strings into a subject, each type known to the map and given once."""
    known = datamap.identity_types()
    subject: dict[str, str] = {}
    for pair in pairs:
        kind, eq, value = pair.partition("=")
        kind = kind.strip()
        if not eq or not kind or not value:
            raise PrivacyError("an identity reads TYPE=VALUE")
        if kind not in known:
            raise PrivacyError(
                f"the map has no identity of type {kind!r} (known: {', '.join(sorted(known))})"
            )
        if kind in subject:
            raise PrivacyError(f"identity type {kind!r} given twice")
        subject[kind] = value
    if not subject:
        raise PrivacyError("give at least one identity")
    return subject


def row_key(table: Table, row: Row) -> Key:
    return tuple(row[c] for c in table.primary_key)


@dataclass
class Linked:
    """The subject's rows of one store: table name -> primary key -> full row."""

    store: Store
    rows: dict[str, dict[Key, Row]] = field(default_factory=dict)

    def tables(self) -> Iterator[tuple[Table, dict[Key, Row]]]:
        for table in self.store.tables.values():
            found = self.rows.get(table.name)
            if found:
                yield table, found

    def count(self) -> int:
        return sum(len(v) for v in self.rows.values())


def discover(
    store: Store, subject: Subject, session: StoreSession, seed: dict[str, dict[Key, Row]] | None = None
) -> Linked:
    """Walk the store's tables parents first and collect every linked row.

    Rows match the subject's identities, or are in ``seed`` (rows picked another way,
    such as expired ones), or reference a row already collected.
    """
    linked = Linked(store)
    for table in store.tables.values():
        found: dict[Key, Row] = dict((seed or {}).get(table.name, {}))
        for kind, column in table.identities.items():
            if kind in subject:
                for row in session.rows_where_in(table.name, column, [subject[kind]]):
                    found[row_key(table, row)] = row
        for column, (parent, parent_column) in table.references.items():
            parent_rows = linked.rows.get(parent)
            if not parent_rows:
                continue
            values = _distinct(r[parent_column] for r in parent_rows.values())
            for row in session.rows_where_in(table.name, column, values):
                found[row_key(table, row)] = row
        if found:
            linked.rows[table.name] = dict(sorted(found.items(), key=lambda kv: _sortable(kv[0])))
    return linked


def _distinct(values: Iterator[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in values:
        if v is not None:
            seen[v] = None
    return list(seen)


def _sortable(key: Key) -> tuple[tuple[int, str, Any], ...]:
    """Order keys of mixed or odd types without comparing unlike values."""
    return tuple((0, "", v) if isinstance(v, int | float) else (1, str(v), 0) for v in key)
