"""What the privacy engine needs from a data store, as a small protocol.

The engine walks, reads, updates and deletes rows only through :class:`StoreSession`
(one open transaction on one store); :class:`StoreConnector` opens such sessions.
:mod:`secops.privacy.connector` implements both with SQLAlchemy Core for any SQL
database; the rest of the engine never touches a driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from secops.privacy.datamap import Store

Row = dict[str, Any]
Key = tuple[Any, ...]


class StoreSession(Protocol):
    def columns(self, table: str) -> list[str]: ...

    def rows_where_in(self, table: str, column: str, values: Sequence[Any]) -> list[Row]:
        """Rows whose ``column`` equals one of ``values`` (strings coerced to the column type)."""
        ...

    def rows_by_key(self, table: str, key_columns: Sequence[str], keys: Sequence[Key]) -> list[Row]: ...

    def rows_containing(self, table: str, column: str, needles: Sequence[str]) -> list[Row]:
        """Rows whose text ``column`` contains one of ``needles``, ignoring case."""
        ...

    def rows_older_than(self, table: str, column: str, cutoff: Any) -> list[Row]: ...

    def update_row(self, table: str, key_columns: Sequence[str], key: Key, values: Row) -> int: ...

    def delete_rows(self, table: str, key_columns: Sequence[str], keys: Sequence[Key]) -> int: ...


class StoreConnector(Protocol):
    def session(self, store: Store) -> AbstractContextManager[StoreSession]:
        """One transaction on ``store``: committed on a clean exit, rolled back on an error."""
        ...
