"""Access and portability export: every linked row of a subject, and mentions of them.

The result is the local command's contract::

    {"subject": {TYPE: VALUE}, "records": [{"store", "table", "primary_key": {col: value},
     "data": {col: value, ... every column}}], "mentions": [{"store", "table",
     "primary_key", "column"}]}

Records come store by store in map order, tables parents first, rows by primary key.
Values are JSON-safe: dates and times in ISO 8601, decimals and UUIDs as strings,
bytes as base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from typing import Any

from secops.privacy.datamap import DataMap, Store
from secops.privacy.graph import Linked, Subject, discover
from secops.privacy.mentions import MentionFinder
from secops.privacy.ports import StoreConnector


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def records(linked: Linked) -> list[dict[str, Any]]:
    out = []
    for table, rows in linked.tables():
        for key, row in rows.items():
            out.append(
                {
                    "store": linked.store.name,
                    "table": table.name,
                    "primary_key": {c: jsonable(v) for c, v in zip(table.primary_key, key, strict=True)},
                    "data": {c: jsonable(v) for c, v in row.items()},
                }
            )
    return out


def export_store(
    store: Store,
    subject: Subject,
    connector: StoreConnector,
    finder: MentionFinder | None = None,
    *,
    mentions: bool = True,
) -> dict[str, Any]:
    """One store's share of an export (one read transaction): its records and mentions."""
    finder = finder or MentionFinder()
    out: dict[str, Any] = {"records": [], "mentions": []}
    with connector.session(store) as session:
        linked = discover(store, subject, session)
        out["records"].extend(records(linked))
        if mentions:
            found = finder.find(store, subject, linked, session)
            out["mentions"].extend(jsonable(m.to_dict()) for m in found)
    return out


def export_subject(
    datamap: DataMap,
    subject: Subject,
    connector: StoreConnector,
    finder: MentionFinder | None = None,
    *,
    mentions: bool = True,
) -> dict[str, Any]:
    """Read every store (one read transaction each) and build the export object.

    ``mentions=False`` skips the search of other subjects' free text (``mentions`` is
    then empty): it reads every ``free_text`` column whole, the slow part of an export.
    """
    finder = finder or MentionFinder()
    out: dict[str, Any] = {"subject": dict(subject), "records": [], "mentions": []}
    for store in datamap.stores.values():
        part = export_store(store, subject, connector, finder, mentions=mentions)
        out["records"].extend(part["records"])
        out["mentions"].extend(part["mentions"])
    return out
