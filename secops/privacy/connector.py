"""The SQL connector: the privacy engine's only door to the application's databases.

This is the one module of :mod:`secops.privacy` that imports SQLAlchemy (Core only, no
ORM); an import-linter contract keeps it so. It implements the engine's
:class:`~secops.privacy.ports.StoreConnector` for any SQLAlchemy URL (SQLite,
PostgreSQL, MySQL, ...), reflecting just the tables the map names, and checks a map
against a live store (:func:`check_store`): tables and columns exist, strategies fit
the column types and nullability, and the columns a walk queries have an index.

SQLite stores are opened with foreign keys enforced, as PostgreSQL always does, and a
SQLite file that does not exist is an unreachable store (never created). A store's URL
comes from the map or from a secret, through the ``resolve_secret`` callable the caller
passes in; neither the URL nor the driver's message with credentials is ever shown.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from secops.privacy.datamap import FREE_TEXT, DataMap, Store
from secops.privacy.errors import PrivacyError, StoreFailed, StoreRejected, StoreUnavailable
from secops.privacy.ports import Key, Row
from secops.privacy.strategies import STRATEGIES

CHUNK = 500
log = logging.getLogger("secops.privacy")
SecretResolver = Callable[[str], str | None]


def _reason(exc: BaseException) -> str:
    """A driver error's first line, with any credentials of a URL in it masked."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    text = re.sub(r"://[^@\s/]*@", "://***@", text)
    return f"{type(orig).__name__}: {text}"[:200]


class SqlSession:
    """One open transaction on one store (see :class:`secops.privacy.ports.StoreSession`).

    ``text_indexes`` maps ``(table, column)`` of a SQLite store to its FTS5 trigram table
    (see :func:`substring_index_ddl`), or to None where there is none."""

    def __init__(self, conn: sa.Connection, tables: dict[str, sa.Table],
                 text_indexes: dict[tuple[str, str], str | None] | None = None) -> None:
        self.conn, self.tables = conn, tables
        self.text_indexes = {} if text_indexes is None else text_indexes

    def columns(self, table: str) -> list[str]:
        return [c.name for c in self.tables[table].columns]

    def _rows(self, stmt: sa.Select[Any]) -> list[Row]:
        return [dict(r._mapping) for r in self.conn.execute(stmt)]

    def rows_where_in(self, table: str, column: str, values: Sequence[Any]) -> list[Row]:
        t = self.tables[table]
        col = t.c[column]
        typed = [v for v in (_coerce(col, v) for v in values) if v is not None]
        out: list[Row] = []
        for i in range(0, len(typed), CHUNK):
            out.extend(self._rows(sa.select(t).where(col.in_(typed[i : i + CHUNK]))))
        return out

    def rows_by_key(self, table: str, key_columns: Sequence[str], keys: Sequence[Key]) -> list[Row]:
        t = self.tables[table]
        if len(key_columns) == 1:
            return self.rows_where_in(table, key_columns[0], [k[0] for k in keys])
        out: list[Row] = []
        for i in range(0, len(keys), CHUNK):
            cond = sa.or_(
                *(
                    sa.and_(*(t.c[c] == v for c, v in zip(key_columns, k, strict=True)))
                    for k in keys[i : i + CHUNK]
                )
            )
            out.extend(self._rows(sa.select(t).where(cond)))
        return out

    def rows_containing(self, table: str, column: str, needles: Sequence[str]) -> list[Row]:
        """Rows whose ``column`` contains a needle, ignoring (ASCII) case. On PostgreSQL
        ILIKE, which a pg_trgm GIN index serves; on SQLite LIKE, narrowed first by the
        column's FTS5 trigram table when it has one (the LIKE still decides, so the rows
        are the same with and without it)."""
        t = self.tables[table]
        col = t.c[column]
        needles = [n for n in needles if n]
        patterns = ["%" + _escape_like(n) + "%" for n in needles]
        if self.conn.dialect.name == "sqlite":  # LIKE ignores ASCII case there, without lower()
            conds = [col.like(p, escape="\\") for p in patterns]
        else:  # ILIKE on PostgreSQL; lower(x) LIKE lower(y) elsewhere
            conds = [col.ilike(p, escape="\\") for p in patterns]
        if not conds:
            return []
        stmt = sa.select(t).where(sa.or_(*conds))
        if self.conn.dialect.name == "sqlite":
            fts = self._text_index(table, column)
            # a trigram MATCH needs three characters; a shorter needle is searched by scan
            if fts is not None and all(len(n) >= 3 for n in needles):
                query = " OR ".join('"' + n.replace('"', '""') + '"' for n in needles)
                key = _rowid_column(t)
                match: sa.Select[Any] = sa.select(sa.literal_column("rowid")).select_from(
                    sa.table(fts)).where(sa.literal_column(_quote(fts)).op("MATCH")(query))
                rowid = t.c[key] if key != "rowid" else sa.literal_column(f"{_quote(table)}.rowid")
                stmt = stmt.where(rowid.in_(match))
        return self._rows(stmt)

    def _text_index(self, table: str, column: str) -> str | None:
        if (table, column) not in self.text_indexes:
            found = _trigram_table(self.conn, table, column)
            if found is None:
                log.warning("no FTS5 trigram table %s: the mention search reads %s.%s whole "
                            "(secops privacy map check prints the DDL)",
                            fts_table_name(table, column), table, column)
            self.text_indexes[(table, column)] = found
        return self.text_indexes[(table, column)]

    def rows_older_than(self, table: str, column: str, cutoff: Any) -> list[Row]:
        t = self.tables[table]
        col = t.c[column]
        if isinstance(cutoff, dt.datetime):
            if isinstance(col.type, sa.Date) and not isinstance(col.type, sa.DateTime):
                cutoff = cutoff.date()
            elif not getattr(col.type, "timezone", False) and cutoff.tzinfo is not None:
                cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)  # naive columns hold UTC
        return self._rows(sa.select(t).where(col < cutoff))

    def update_row(self, table: str, key_columns: Sequence[str], key: Key, values: Row) -> int:
        t = self.tables[table]
        cond = sa.and_(*(t.c[c] == v for c, v in zip(key_columns, key, strict=True)))
        return self.conn.execute(sa.update(t).where(cond).values(**values)).rowcount

    def delete_rows(self, table: str, key_columns: Sequence[str], keys: Sequence[Key]) -> int:
        t = self.tables[table]
        done = 0
        for i in range(0, len(keys), CHUNK):
            part = keys[i : i + CHUNK]
            cond: sa.ColumnElement[bool]
            if len(key_columns) == 1:
                cond = t.c[key_columns[0]].in_([k[0] for k in part])
            else:
                cond = sa.or_(
                    *(sa.and_(*(t.c[c] == v for c, v in zip(key_columns, k, strict=True))) for k in part)
                )
            done += self.conn.execute(sa.delete(t).where(cond)).rowcount
        return done


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fts_table_name(table: str, column: str) -> str:
    """The FTS5 trigram table the mention search of ``table.column`` looks for on SQLite."""
    return f"{table}_{column}_fts"


def _rowid_column(t: sa.Table) -> str:
    """The column that is the table's rowid: its INTEGER PRIMARY KEY, else ``rowid``."""
    pk = list(t.primary_key.columns)
    if len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
        return pk[0].name
    return "rowid"


def substring_index_ddl(dialect: str, t: sa.Table, column: str) -> list[str]:
    """The statements that make the mention search of ``t.column`` an index lookup.

    PostgreSQL: a pg_trgm GIN index (it serves ILIKE '%...%'). SQLite (3.34 or later):
    an external-content FTS5 table with the trigram tokenizer, filled once ('rebuild')
    and kept current by three triggers."""
    # Text for an operator to run, never executed here; names come from the map, quoted.
    table, col = _quote(t.name), _quote(column)
    if dialect == "postgresql":
        index = _quote(f"ix_{t.name}_{column}_trgm")
        return ["CREATE EXTENSION IF NOT EXISTS pg_trgm",
                f"CREATE INDEX {index} ON {table} USING gin ({col} gin_trgm_ops)"]
    if dialect != "sqlite":
        return []
    fts_name = fts_table_name(t.name, column)
    fts, key = _quote(fts_name), _rowid_column(t)
    rid = _quote(key) if key != "rowid" else "rowid"
    options = f"tokenize='trigram', content='{t.name}'"
    if key != "rowid":
        options += f", content_rowid='{key}'"
    add = f"INSERT INTO {fts}(rowid, {col}) VALUES (new.{rid}, new.{col});"  # noqa: S608  # nosec B608
    drop = f"INSERT INTO {fts}({fts}, rowid, {col}) VALUES ('delete', old.{rid}, old.{col});"  # noqa: S608  # nosec B608
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({col}, {options})",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # noqa: S608  # nosec B608
        f"CREATE TRIGGER {_quote(fts_name + '_ai')} AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {_quote(fts_name + '_ad')} AFTER DELETE ON {table} BEGIN {drop} END",
        f"CREATE TRIGGER {_quote(fts_name + '_au')} AFTER UPDATE OF {col} ON {table} BEGIN {drop} {add} END",
    ]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _coerce(col: sa.Column[Any], value: Any) -> Any:
    """A command-line string as the column's Python type; None when it cannot be one."""
    if not isinstance(value, str):
        return value
    try:
        python_type = col.type.python_type
    except NotImplementedError:
        return value
    if python_type is str:
        return value
    try:
        return python_type(value)
    except (TypeError, ValueError):
        return None


def _transient(exc: sa.exc.SQLAlchemyError) -> bool:
    """May the same work succeed later? A lost connection, a lock, a timeout, a
    serialization failure may pass; a constraint, a missing column or a file that is not
    a database does not."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return True  # pool timeouts and the like
    return exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError)


def _enforce_sqlite_fks(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class SqlConnector:
    """Opens sessions on the map's stores; one engine per store, reflected once."""

    def __init__(self, datamap: DataMap, resolve_secret: SecretResolver | None = None) -> None:
        self.datamap = datamap
        self.resolve_secret = resolve_secret
        self._engines: dict[str, sa.Engine] = {}
        self._tables: dict[str, dict[str, sa.Table]] = {}
        self._text_indexes: dict[str, dict[tuple[str, str], str | None]] = {}

    def __repr__(self) -> str:  # never show URLs
        return f"SqlConnector(stores={list(self.datamap.stores)})"

    def _url(self, store: Store) -> str:
        if store.url is not None:
            return store.url
        assert store.url_secret is not None
        value = self.resolve_secret(store.url_secret) if self.resolve_secret else None
        if not value:
            raise StoreUnavailable(
                f"{self.datamap.path}:{self.datamap.line('stores', store.name, 'url_secret')}: "
                f"stores.{store.name}.url_secret: secret {store.url_secret!r} is not set"
            )
        return value

    def _where(self, store: Store) -> str:
        key = "url" if store.url is not None else "url_secret"
        return (
            f"{self.datamap.path}:{self.datamap.line('stores', store.name, key)}: stores.{store.name}.{key}"
        )

    def engine(self, store: Store) -> sa.Engine:
        if store.name in self._engines:
            return self._engines[store.name]
        raw = self._url(store)
        try:
            url = make_url(raw)
        except (sa.exc.ArgumentError, ValueError):
            raise StoreUnavailable(f"{self._where(store)}: not a valid database URL") from None
        if url.get_backend_name() == "sqlite":
            db = url.database or ""
            if db and db != ":memory:" and not db.startswith("file:") and not os.path.isfile(db):
                raise StoreUnavailable(f"{self._where(store)}: store unreachable (no SQLite file there)")
        try:
            engine = sa.create_engine(url, pool_pre_ping=True)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
            raise StoreUnavailable(
                f"{self._where(store)}: cannot use this URL ({type(exc).__name__})"
            ) from None
        if url.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _enforce_sqlite_fks)
        self._engines[store.name] = engine
        return engine

    def tables(self, store: Store, conn: sa.Connection) -> dict[str, sa.Table]:
        """Reflect the map's tables of ``store``; an unknown table is a :class:`MapError`."""
        if store.name in self._tables:
            return self._tables[store.name]
        existing = set(sa.inspect(conn).get_table_names())
        for name in store.tables:
            if name not in existing:
                raise self.datamap.error(
                    f"unknown table {name!r} in store {store.name!r}", "stores", store.name, "tables", name
                )
        meta = sa.MetaData()
        meta.reflect(bind=conn, only=list(store.tables))
        self._tables[store.name] = {name: meta.tables[name] for name in store.tables}
        return self._tables[store.name]

    @contextmanager
    def connect(self, store: Store) -> Iterator[sa.Connection]:
        engine = self.engine(store)
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailable(f"{self._where(store)}: store unreachable ({_reason(exc)})") from None
        with conn:
            yield conn

    @contextmanager
    def session(self, store: Store) -> Iterator[SqlSession]:
        """One transaction: committed on a clean exit, rolled back on any error."""
        with self.connect(store) as conn:
            try:
                tables = self.tables(store, conn)
                if conn.in_transaction():  # reflection began one
                    conn.rollback()
                with conn.begin():
                    yield SqlSession(conn, tables, self._text_indexes.setdefault(store.name, {}))
            except sa.exc.SQLAlchemyError as exc:
                message = f"store {store.name!r}: transaction rolled back ({_reason(exc)})"
                if _transient(exc):
                    raise StoreFailed(message) from None
                raise StoreRejected(message) from None

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        self._tables.clear()
        self._text_indexes.clear()


# -- checking a map against a live store --------------------------------------------


def check_store(connector: SqlConnector, store: Store) -> list[str]:
    """Check ``store`` against its database; return warnings, raise :class:`MapError`."""
    try:
        return _check_store(connector, store)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreUnavailable(f"store {store.name!r}: cannot be inspected ({_reason(exc)})") from None


def _check_store(connector: SqlConnector, store: Store) -> list[str]:
    dm = connector.datamap
    warnings: list[str] = []
    with connector.connect(store) as conn:
        tables = connector.tables(store, conn)
        inspector = sa.inspect(conn)
        for table in store.tables.values():
            base = ("stores", store.name, "tables", table.name)
            t = tables[table.name]
            indexed = _leading_columns(inspector, table.name, t)

            def need(column: str, *key: str, t: sa.Table = t, name: str = table.name) -> sa.Column[Any]:
                if column not in t.c:
                    raise dm.error(f"unknown column {column!r} of table {name!r}", *key)
                return t.c[column]

            for column in table.primary_key:
                need(column, *base, "primary_key")
            for kind, column in table.identities.items():
                need(column, *base, "identities", kind)
                if column not in indexed:
                    warnings.append(
                        _no_index(dm, (*base, "identities", kind), store.name, table.name, column)
                    )
            for column, (parent, parent_column) in table.references.items():
                need(column, *base, "references", column)
                p = tables[parent]
                if parent_column not in p.c:
                    raise dm.error(
                        f"unknown column {parent_column!r} of table {parent!r}", *base, "references", column
                    )
                if column not in indexed:
                    warnings.append(
                        _no_index(dm, (*base, "references", column), store.name, table.name, column)
                    )
            for column, f in table.fields.items():
                col = need(column, *base, "fields", column)
                strategy = STRATEGIES[f.erase]
                if strategy.text_only and not isinstance(col.type, sa.String):
                    raise dm.error(
                        f"strategy {f.erase!r} needs a text column ({column} is {col.type})",
                        *base,
                        "fields",
                        column,
                        "erase",
                    )
                if strategy.nullable and not col.nullable:
                    raise dm.error(
                        f"strategy 'null' on a NOT NULL column ({column})", *base, "fields", column, "erase"
                    )
                if column in table.primary_key and f.erase != "keep":
                    raise dm.error(
                        "a primary-key column cannot be erased (delete the row instead)",
                        *base,
                        "fields",
                        column,
                        "erase",
                    )
            for column, f in table.fields.items():
                if f.category == FREE_TEXT and not _substring_indexed(inspector, conn, table.name, column):
                    key = (*base, "fields", column)
                    ddl = substring_index_ddl(conn.dialect.name, t, column)
                    serve = ("; serve it with: " + "; ".join(ddl) + ";") if ddl else ""
                    warnings.append(
                        f"{dm.path}:{dm.line(*key)}: {'.'.join(key)}: {store.name}.{table.name}.{column} is "
                        f"free text: every export's mention search reads it whole{serve}"
                    )
            if table.retention_column is not None:
                need(table.retention_column, *base, "retention_column")
            if not table.identities and not table.references:
                warnings.append(
                    f"{dm.path}:{dm.line(*base)}: {'.'.join(base)}: no identity and no "
                    "reference: its rows are never linked to a subject"
                )
    return warnings


def _trigram_table(conn: sa.Connection, table: str, column: str) -> str | None:
    """SQLite: the name of the column's FTS5 trigram table (``fts_table_name``), if the
    database has one."""
    name = fts_table_name(table, column)
    sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' "
                               "AND name = :name"), {"name": name}).scalar()
    return name if sql and "fts5" in sql.lower() and "trigram" in sql.lower() else None


def _substring_indexed(inspector: Any, conn: sa.Connection, name: str, column: str) -> bool:
    """A trigram (GIN/GiST) index on PostgreSQL can serve ILIKE '%...%', an FTS5 trigram
    table on SQLite the search narrowed by it; nothing else can."""
    if conn.dialect.name == "sqlite":
        return _trigram_table(conn, name, column) is not None
    if conn.dialect.name != "postgresql":
        return False
    for ix in inspector.get_indexes(name):
        using = (ix.get("dialect_options") or {}).get("postgresql_using")
        if using in ("gin", "gist") and column in (ix.get("column_names") or []):
            return True
    return False


def _no_index(dm: DataMap, key: tuple[str, ...], store: str, table: str, column: str) -> str:
    return (
        f"{dm.path}:{dm.line(*key)}: {'.'.join(key)}: {store}.{table}.{column} has no index "
        "(every export and erasure reads the whole table)"
    )


def _leading_columns(inspector: Any, name: str, t: sa.Table) -> set[str]:
    """Columns that lead an index, a unique constraint or the primary key."""
    out = set()
    pk = [c.name for c in t.primary_key.columns]
    if pk:
        out.add(pk[0])
    for ix in inspector.get_indexes(name):
        cols = [c for c in ix.get("column_names") or [] if c]
        if cols:
            out.add(cols[0])
    for uc in inspector.get_unique_constraints(name):
        cols = uc.get("column_names") or []
        if cols:
            out.add(cols[0])
    return out


def check_map(connector: SqlConnector) -> list[str]:
    """Every store of the map checked in order; warnings of all of them."""
    warnings: list[str] = []
    for store in connector.datamap.stores.values():
        warnings.extend(check_store(connector, store))
    return warnings


__all__ = ["CHUNK", "PrivacyError", "SqlConnector", "SqlSession", "check_map", "check_store"]
