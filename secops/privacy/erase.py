"""Erasure with verification.

For each store, in one transaction: walk the subject's linked rows, then erase tables
children before parents — ``erase: delete`` deletes the rows; ``erase: update`` and every
table under ``legal_hold`` (never row-deleted) rewrite each personal field by its
strategy and keep the rest. A store whose transaction fails is rolled back as a whole
and reported; the other stores are not affected.

Then a **verification pass**, in a fresh transaction per store: every row the erasure
touched is read again (a deleted row must be gone, a kept row must hold only erased
values), and the subject's identities are walked again from scratch, so a row that
appeared in between (an application writing the subject back) is found. Only counts
per table are reported, never a value.

A second run on the same subject changes nothing and verifies: erased identity values
no longer match, strategies leave erased values as they are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secops.errors import SecOpsError, Unavailable
from secops.privacy.datamap import DataMap, Store, Table
from secops.privacy.errors import StoreUnavailable
from secops.privacy.graph import Linked, Subject, discover, row_key
from secops.privacy.ports import Key, Row, StoreConnector, StoreSession
from secops.privacy.strategies import STRATEGIES


def subject_hash(key: bytes, subject: Subject) -> str:
    """Keyed hash of the subject's identities: the same subject, the same hash."""
    canonical = json.dumps(sorted(subject.items()), separators=(",", ":"), ensure_ascii=False)
    return "hmac-sha256:" + hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Action:
    store: str
    table: str
    strategy: str
    columns: tuple[str, ...]
    rows: int
    legal_hold: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The command's contract: store, table, strategy, rows."""
        return {"store": self.store, "table": self.table, "strategy": self.strategy, "rows": self.rows}

    def to_receipt(self) -> dict[str, Any]:
        return {**self.to_dict(), "columns": list(self.columns), "legal_hold": self.legal_hold}


@dataclass
class StoreOutcome:
    store: str
    status: str  # committed | rolled_back | unavailable
    actions: list[Action] = field(default_factory=list)
    error: str | None = None
    remaining: dict[str, int] = field(default_factory=dict)  # table -> rows with personal data left
    verify_error: str | None = None  # the verification pass itself failed
    linked: Linked | None = None
    retryable: bool = True  # the failure may pass (store unreachable, locked); not in the receipt


@dataclass
class ErasureResult:
    subject_hash: str
    started_at: str
    completed_at: str
    stores: list[StoreOutcome]

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.stores for a in s.actions]

    @property
    def failed(self) -> bool:
        return any(s.status != "committed" for s in self.stores)

    @property
    def verified(self) -> bool:
        return not self.failed and not any(s.remaining or s.verify_error for s in self.stores)


Changed = dict[str, list[Key]]  # table -> keys of the rows a transaction deleted or rewrote


def _erase_table(
    store: Store, table: Table, rows: dict[Key, Row], session: StoreSession, key: bytes,
    changed: Changed,
) -> list[Action]:
    if table.deletes_rows:
        n = session.delete_rows(table.name, table.primary_key, list(rows))
        changed.setdefault(table.name, []).extend(rows)
        return [Action(store.name, table.name, "delete", (), n)]
    by_strategy: dict[str, list[str]] = {}
    for f in table.erased_fields():
        by_strategy.setdefault(f.erase, []).append(f.column)
    for pk, row in rows.items():
        changes = {}
        for f in table.erased_fields():
            new = STRATEGIES[f.erase].apply(row[f.column], key)
            if new != row[f.column]:
                changes[f.column] = new
        if changes:
            session.update_row(table.name, table.primary_key, pk, changes)
            changed.setdefault(table.name, []).append(pk)
    hold = table.legal_hold is not None
    return [
        Action(store.name, table.name, name, tuple(cols), len(rows), hold)
        for name, cols in by_strategy.items()
    ]


def erase_linked(
    linked: Linked, session: StoreSession, key: bytes, changed: Changed | None = None
) -> list[Action]:
    """Erase collected rows children before parents, inside the caller's transaction;
    ``changed`` collects the keys of the rows deleted or rewritten."""
    actions: list[Action] = []
    changed = {} if changed is None else changed
    for table in linked.store.children_first():
        rows = linked.rows.get(table.name)
        if rows:
            actions.extend(_erase_table(linked.store, table, rows, session, key, changed))
    return actions


def erase_store(
    store: Store, subject: Subject, session: StoreSession, key: bytes, changed: Changed | None = None
) -> tuple[list[Action], Linked]:
    """Erase the subject's rows of one store inside the caller's transaction."""
    linked = discover(store, subject, session)
    return erase_linked(linked, session, key, changed), linked


def _left(table: Table, row: Row) -> bool:
    """Does this row still hold personal data it should not?"""
    if table.deletes_rows:
        return True
    return any(not STRATEGIES[f.erase].erased(row.get(f.column)) for f in table.erased_fields())


def verify_store(
    store: Store, subject: Subject, erased: Linked | None, session: StoreSession
) -> dict[str, int]:
    """Rows per table that still hold the subject's personal data."""
    left: dict[str, set[Key]] = {}
    if erased is not None:
        for table, rows in erased.tables():
            for row in session.rows_by_key(table.name, table.primary_key, list(rows)):
                if _left(table, row):
                    left.setdefault(table.name, set()).add(row_key(table, row))
    for table, rows in discover(store, subject, session).tables():
        for pk, row in rows.items():
            if _left(table, row):
                left.setdefault(table.name, set()).add(pk)
    return {name: len(keys) for name, keys in left.items()}


def failure_status(exc: SecOpsError) -> str:
    """A failed store's outcome status: ``unavailable`` when it could not be reached,
    else ``rolled_back``."""
    return "unavailable" if isinstance(exc, StoreUnavailable) else "rolled_back"


def erase_subject(
    datamap: DataMap,
    subject: Subject,
    connector: StoreConnector,
    *,
    key: bytes,
    now: Callable[[], dt.datetime] | None = None,
    between: Callable[[], None] | None = None,
) -> ErasureResult:
    """Erase in every store, then verify. ``between`` runs after erasure, before verification."""
    clock = now or (lambda: dt.datetime.now(dt.UTC))
    started = clock()
    outcomes: list[StoreOutcome] = []
    for store in datamap.stores.values():
        try:
            with connector.session(store) as session:
                actions, linked = erase_store(store, subject, session, key)
            outcomes.append(StoreOutcome(store.name, "committed", actions, linked=linked))
        except SecOpsError as exc:
            outcomes.append(StoreOutcome(store.name, failure_status(exc), error=exc.message))
    if between is not None:
        between()
    for outcome in outcomes:
        if outcome.status != "committed":
            continue
        store = datamap.stores[outcome.store]
        try:
            with connector.session(store) as session:
                outcome.remaining = verify_store(store, subject, outcome.linked, session)
        except SecOpsError as exc:  # erased and committed, but not proven: not verified
            outcome.verify_error = exc.message
    return ErasureResult(
        subject_hash=subject_hash(key, subject),
        started_at=_iso(started),
        completed_at=_iso(clock()),
        stores=outcomes,
    )


def erase_one_store(
    store: Store, subject: Subject, connector: StoreConnector, *, key: bytes,
    before_commit: Callable[[list[Action], Changed], None] | None = None,
) -> StoreOutcome:
    """Erase the subject in one store (one transaction), then verify it in a fresh one.

    ``before_commit`` receives the actions and the changed rows' keys after the last
    write and before the commit (a write-ahead record: if it raises, the store rolls
    back). Running it again is harmless: erased rows no longer match the subject's
    identities and strategies leave erased values as they are, so a second run changes
    nothing."""
    try:
        with connector.session(store) as session:
            changed: Changed = {}
            actions, linked = erase_store(store, subject, session, key, changed)
            if before_commit is not None:
                before_commit(actions, changed)
    except SecOpsError as exc:
        return StoreOutcome(store.name, failure_status(exc), error=exc.message,
                            retryable=isinstance(exc, Unavailable))
    outcome = StoreOutcome(store.name, "committed", actions, linked=linked)
    try:
        with connector.session(store) as session:
            outcome.remaining = verify_store(store, subject, linked, session)
    except SecOpsError as exc:
        outcome.verify_error = exc.message
    return outcome


def transaction_committed(store: Store, changed: Changed, connector: StoreConnector) -> bool:
    """Did the erasure transaction that changed these rows commit? A store transaction is
    all or nothing, so it did exactly when none of its rows holds personal data any more
    (a deleted row is gone, a rewritten one holds only erased values)."""
    with connector.session(store) as session:
        for name, keys in changed.items():
            table = store.tables[name]
            if keys and any(_left(table, row) for row in session.rows_by_key(
                    name, table.primary_key, [tuple(k) for k in keys])):
                return False
    return True


def merge_actions(*runs: list[Action]) -> list[Action]:
    """The actions of several committed transactions on one store, rows summed per
    table and strategy (in first-seen order)."""
    merged: dict[tuple[str, str], Action] = {}
    for actions in runs:
        for a in actions:
            seen = merged.get((a.table, a.strategy))
            if seen is None:
                merged[(a.table, a.strategy)] = a
            else:
                columns = tuple(dict.fromkeys((*seen.columns, *a.columns)))
                merged[(a.table, a.strategy)] = Action(a.store, a.table, a.strategy, columns,
                                                       seen.rows + a.rows, seen.legal_hold)
    return list(merged.values())


def outcome_to_dict(outcome: StoreOutcome) -> dict[str, Any]:
    """A store's outcome as a sub-job records it: counts and names only, never a value."""
    return {
        "store": outcome.store,
        "status": outcome.status,
        "error": outcome.error,
        "verify_error": outcome.verify_error,
        "remaining": dict(outcome.remaining),
        "actions": [a.to_receipt() for a in outcome.actions],
    }


def outcome_from_dict(data: dict[str, Any]) -> StoreOutcome:
    actions = [
        Action(a["store"], a["table"], a["strategy"], tuple(a["columns"]), a["rows"], a["legal_hold"])
        for a in data["actions"]
    ]
    return StoreOutcome(
        data["store"], data["status"], actions, error=data["error"],
        remaining=dict(data["remaining"]), verify_error=data["verify_error"],
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def receipt_body(result: ErasureResult, datamap: DataMap, subject: Subject) -> dict[str, Any]:
    """What a receipt states (to be signed): no erased value, no raw identity."""
    return {
        "version": 1,
        "receipt_id": str(uuid.uuid4()),
        "subject_hash": result.subject_hash,
        "identity_types": sorted(subject),
        "map_digest": "sha256:" + datamap.digest,
        "started_at": result.started_at,
        "completed_at": result.completed_at,
        "stores": [
            {"store": s.store, "status": s.status, "error": s.error, "verify_error": s.verify_error}
            for s in result.stores
        ],
        "actions": [a.to_receipt() for a in result.actions],
        "verification": {
            "verified": result.verified,
            "remaining": [
                {"store": s.store, "table": t, "rows": n}
                for s in result.stores
                for t, n in sorted(s.remaining.items())
            ],
        },
    }
