"""Rectification (Art 16) and the recipients to tell about it (Art 19).

Updates name personal fields of the map as ``store.table.column``; each is written to
every row of that table linked to the subject, one transaction per store. The recipients
to notify are those of every ``processing`` entry whose categories include a rectified
field's category.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from secops.privacy.datamap import DataMap, Field, Store
from secops.privacy.errors import PrivacyError
from secops.privacy.graph import Subject, discover
from secops.privacy.ports import StoreConnector


@dataclass(frozen=True, slots=True)
class Change:
    store: str
    table: str
    column: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "table": self.table, "column": self.column, "rows": self.rows}


def parse_updates(datamap: DataMap, updates: Mapping[str, Any]) -> dict[tuple[str, str, str], Any]:
    """``{"store.table.column": value}`` checked against the map's personal fields."""
    if not updates:
        raise PrivacyError("a rectification names at least one field")
    out: dict[tuple[str, str, str], Any] = {}
    for name, value in updates.items():
        parts = name.split(".")
        if len(parts) != 3:
            raise PrivacyError(f"rectification field {name!r} must read store.table.column")
        store, table, column = parts
        t = datamap.stores.get(store, None)
        if t is None or table not in t.tables or column not in t.tables[table].fields:
            raise PrivacyError(f"rectification field {name!r} is not a personal field of the map")
        if value is not None and not isinstance(value, str | int | float):
            raise PrivacyError(f"rectification field {name!r}: give a string, a number or null")
        out[(store, table, column)] = value
    return out


def recipients(datamap: DataMap, fields: list[Field]) -> list[str]:
    categories = {f.category for f in fields}
    return sorted({r for p in datamap.processing if categories & set(p.categories) for r in p.recipients})


def rectify_store(
    datamap: DataMap, store: Store, subject: Subject, updates: Mapping[str, Any], connector: StoreConnector
) -> list[Change]:
    """Apply the updates that name ``store`` to the subject's linked rows there, in one
    transaction; writing the same values again changes nothing."""
    mine = {k: v for k, v in parse_updates(datamap, updates).items() if k[0] == store.name}
    changes: list[Change] = []
    if not mine:
        return changes
    with connector.session(store) as session:
        linked = discover(store, subject, session)
        for (_, table_name, column), value in mine.items():
            table = store.tables[table_name]
            rows = linked.rows.get(table_name, {})
            for key in rows:
                session.update_row(table_name, table.primary_key, key, {column: value})
            changes.append(Change(store.name, table_name, column, len(rows)))
    return changes


def rectify_subject(
    datamap: DataMap, subject: Subject, updates: Mapping[str, Any], connector: StoreConnector
) -> tuple[list[Change], list[str]]:
    """Apply ``updates`` to the subject's linked rows; return the changes and recipients."""
    parsed = parse_updates(datamap, updates)
    changes: list[Change] = []
    for store in datamap.stores.values():
        changes.extend(rectify_store(datamap, store, subject, updates, connector))
    fields = [datamap.stores[s].tables[t].fields[c] for s, t, c in parsed]
    return changes, recipients(datamap, fields)
