"""Engines and sessions: one engine per process and URL, one session per request or task.

SQLite runs in WAL mode with a busy timeout, and every transaction starts with
``BEGIN IMMEDIATE``: the write lock is taken up front, so a reader that later writes
never fails with "database is locked" when the API, a worker and beat write at once.
Waiting for that lock is our own loop with sub-millisecond first retries: SQLite's
built-in busy handler sleeps in steps of up to 100 ms, which under contention turns a
2 ms transaction into tens of milliseconds of idle waiting.

Reads that never write (authentication, and the API's read-only routes) use
:func:`get_read_sessionmaker` instead. On SQLite its connections begin with a plain
(deferred) ``BEGIN`` and have ``PRAGMA query_only`` set: in WAL mode such a reader never
waits for the write lock or holds it, and a write through it fails loudly instead of
racing. Elsewhere it is the ordinary sessionmaker.
"""

from __future__ import annotations

import functools
import logging
import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from secops.config import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
_engines: dict[tuple[str, bool], Engine] = {}
_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}


def get_engine(url: str | None = None, *, read_only: bool = False) -> Engine:
    url = url or get_settings().resolved_database_url
    engine = _engines.get((url, read_only))
    if engine is None:
        if read_only and make_url(url).get_backend_name() != "sqlite":
            engine = get_engine(url)  # one engine: only SQLite needs a reader of its own
        else:
            engine = _build_engine(url, read_only)
        _engines[(url, read_only)] = engine
    return engine


def _build_engine(url: str, read_only: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_ms = int(get_settings().sqlite_busy_timeout * 1000)
        engine = create_engine(
            url, connect_args={"timeout": busy_ms / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", functools.partial(_sqlite_on_connect, busy_ms=busy_ms))
        if read_only:
            event.listen(engine, "connect", _sqlite_read_only)
            event.listen(engine, "begin", _sqlite_on_begin_read)
        else:
            event.listen(engine, "begin", functools.partial(_sqlite_on_begin, busy_ms=busy_ms))
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # psycopg: a look at the socket instead of a round trip at every checkout; another
    # driver: SQLAlchemy's ping.
    psycopg = parsed.get_driver_name() == "psycopg"
    engine = create_engine(parsed, pool_pre_ping=not psycopg, pool_size=5, max_overflow=10)
    if psycopg:
        event.listen(engine, "checkout", _pg_still_open)
    return engine


def _pg_still_open(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled PostgreSQL connection the server has closed, without a round trip.

    An idle connection has nothing to read: when its socket is readable (the server's
    goodbye, "terminating connection", or the end of the stream after a restart) or
    psycopg already knows it broken, the pool discards it and connects anew in its
    place. A healthy connection with an asynchronous message waiting (a notification) is
    merely replaced. A statement on a connection that died after this
    check fails as a disconnect, and SQLAlchemy then drops every connection the pool
    holds from before it.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    try:
        fd = dbapi_connection.pgconn.socket
    except Exception as exc:  # psycopg.OperationalError: no socket any more
        raise DisconnectionError("the connection has no socket") from exc
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection or sent while idle")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any,
                       busy_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")


def _sqlite_on_begin_read(conn: Any) -> None:
    """A deferred ``BEGIN``: a snapshot at the first read, never the write lock."""
    conn.connection.dbapi_connection.execute("BEGIN")


def _sqlite_on_begin(conn: Any, busy_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    """``BEGIN IMMEDIATE``, retried quickly while another connection holds the write lock."""
    raw = conn.connection.dbapi_connection
    deadline = time.monotonic() + busy_ms / 1000
    delay = 0.0001
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.001)
    finally:
        raw.execute(f"PRAGMA busy_timeout={busy_ms}")


def insert_skipping_existing(session: Session, model: type[Any]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for ``model`` on this session's database: a
    row another transaction committed first is kept and ours is skipped (without it, the
    second of two concurrent inserts fails on PostgreSQL; SQLite's write lock serialises
    them)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing()


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    return _sessionmaker(url, read_only=False)


def get_read_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """Sessions that only read (see the module's docstring)."""
    return _sessionmaker(url, read_only=True)


def _sessionmaker(url: str | None, *, read_only: bool) -> sessionmaker[Session]:
    url = url or get_settings().resolved_database_url
    factory = _factories.get((url, read_only))
    if factory is None:
        factory = sessionmaker(bind=get_engine(url, read_only=read_only),
                               expire_on_commit=False)
        _factories[(url, read_only)] = factory
    return factory


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session for one unit of work at a boundary: commits on success, rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def warm_pool(url: str | None = None) -> int:
    """Open the pool's connections (the write engine's, and SQLite's reader) before the
    first requests need them, so they do not wait for connecting and the dialect's first
    queries. Returns how many were opened; a database that cannot be reached is logged,
    not raised (the requests report it)."""
    opened = 0
    engines = {id(e): e for e in (get_engine(url), get_engine(url, read_only=True))}
    for engine in engines.values():
        size = getattr(engine.pool, "size", lambda: 1)()
        connections = []
        try:
            for _ in range(size):
                connections.append(engine.connect())
                opened += 1
        except SQLAlchemyError:
            logging.getLogger("secops.db").warning("could not open the database pool",
                                                   exc_info=True)
        finally:
            for connection in connections:
                connection.close()
    return opened


def reset_pools_after_fork() -> None:
    """In a forked child: give this process's engines new, empty pools (the pooled
    connections belong to the parent), keeping the engines themselves, so that what the
    parent prepared before the fork (the dialect's first-connection set-up, the compiled
    statements) serves the child too. The parent closes its connections before it forks
    (SQLite's must never cross a fork); the child leaves any it finds to the parent."""
    for engine in {id(e): e for e in _engines.values()}.values():
        engine.dispose(close=False)


def dispose_engines() -> None:
    """Drop pooled connections and forget the engines (in tests between databases)."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _factories.clear()
