"""Retention: rows older than their table's ``retention_days`` are erased.

A row is expired when its ``retention_column`` (a date or timestamp) lies more than
``retention_days`` before now. Expired rows and every row that references them (their
children, to any depth) are erased as an erasure would erase them: deleted, or, under a
legal hold or ``erase: update``, their personal fields erased by strategy and the rest
kept. One transaction per store; children before parents. A dry run reports the same
counts and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from secops.errors import SecOpsError
from secops.privacy.datamap import DataMap
from secops.privacy.erase import Action, erase_linked, failure_status
from secops.privacy.graph import Linked, discover, row_key
from secops.privacy.ports import Key, Row, StoreConnector


@dataclass
class RetentionOutcome:
    store: str
    status: str  # committed | dry_run | rolled_back | unavailable
    actions: list[Action] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "status": self.status,
            "error": self.error,
            "actions": [a.to_receipt() for a in self.actions],
        }


def _planned(linked: Linked) -> list[Action]:
    """The actions an erasure of ``linked`` would take, without taking them."""
    actions: list[Action] = []
    for table in linked.store.children_first():
        rows = linked.rows.get(table.name)
        if not rows:
            continue
        if table.deletes_rows:
            actions.append(Action(linked.store.name, table.name, "delete", (), len(rows)))
            continue
        by_strategy: dict[str, list[str]] = {}
        for f in table.erased_fields():
            by_strategy.setdefault(f.erase, []).append(f.column)
        actions += [
            Action(linked.store.name, table.name, name, tuple(cols), len(rows), table.legal_hold is not None)
            for name, cols in by_strategy.items()
        ]
    return actions


def apply_retention(
    datamap: DataMap, connector: StoreConnector, *, key: bytes, now: dt.datetime, dry_run: bool = False
) -> list[RetentionOutcome]:
    outcomes = []
    for store in datamap.stores.values():
        if not any(t.retention_days for t in store.tables.values()):
            continue
        try:
            with connector.session(store) as session:
                seed: dict[str, dict[Key, Row]] = {}
                for table in store.tables.values():
                    if table.retention_days is None or table.retention_column is None:
                        continue
                    cutoff = now - dt.timedelta(days=table.retention_days)
                    rows = session.rows_older_than(table.name, table.retention_column, cutoff)
                    if rows:
                        seed[table.name] = {row_key(table, r): r for r in rows}
                linked = discover(store, {}, session, seed=seed)
                if dry_run:
                    outcomes.append(RetentionOutcome(store.name, "dry_run", _planned(linked)))
                else:
                    outcomes.append(
                        RetentionOutcome(store.name, "committed", erase_linked(linked, session, key))
                    )
        except SecOpsError as exc:
            outcomes.append(RetentionOutcome(store.name, failure_status(exc), error=exc.message))
    return outcomes
