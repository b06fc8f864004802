"""Privacy engine: export and erasure of one data subject in a large store.

Builds a shop of N users, 3N orders and 3N order items (default N = 1,000,000) on SQLite
and, when a PostgreSQL server is reachable, in a fresh PostgreSQL database, with the
indexes the map implies (``orders.user_id``, ``order_items.order_id``, ``users.email``).
Then, for ``--runs`` subjects picked at random (fixed seed), times the local engine's
export without and with the mention search (which reads the free-text columns whole),
and its erasure (one transaction, children first, verification pass), and prints
median, minimum and maximum per backend. Then it adds the text indexes ``map check``
prints for the free-text columns (SQLite: FTS5 trigram tables with their triggers;
PostgreSQL: pg_trgm GIN indexes) and measures again (other subjects: another seed), so
each backend is printed without and with them. ``check_map`` runs first: its warnings
are printed.

    python benchmarks/privacy.py                          # 1M users, SQLite and PostgreSQL
    python benchmarks/privacy.py --users 100000 --runs 5  # smaller
    python benchmarks/privacy.py --no-postgres

PostgreSQL: ``SECOPS_TEST_PG_URL`` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres)
names a server where a database may be created; it is dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from secops.privacy import erase_subject, export_subject, load_map  # noqa: E402
from secops.privacy.connector import SqlConnector, check_map, substring_index_ddl  # noqa: E402
from secops.privacy.mentions import default_classifier  # noqa: E402

PG_ADMIN = os.environ.get("SECOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
KEY = b"benchmark-key-benchmark-key-0123456789"
SCHEMA = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL, name VARCHAR(100), "
    "created_at DATE NOT NULL)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), "
    "placed_on DATE NOT NULL, total_cents INTEGER NOT NULL, shipping_name VARCHAR(100) NOT NULL, notes TEXT)",
    "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), "
    "sku VARCHAR(20) NOT NULL, price_cents INTEGER NOT NULL, gift_message TEXT)",
]
INDEXES = [
    "CREATE UNIQUE INDEX ix_users_email ON users (email)",
    "CREATE INDEX ix_orders_user_id ON orders (user_id)",
    "CREATE INDEX ix_order_items_order_id ON order_items (order_id)",
]
MAP = """\
version: 1
stores:
  shop:
    url: {url}
    tables:
      users:
        primary_key: id
        identities: {{email: email}}
        erase: update
        fields:
          email: {{category: contact, erase: hash}}
          name: {{category: name, erase: "null"}}
      orders:
        primary_key: id
        references: {{user_id: users.id}}
        erase: update
        legal_hold: "tax records"
        fields:
          shipping_name: {{category: name, erase: redact}}
          notes: {{category: free_text, erase: redact}}
      order_items:
        primary_key: id
        references: {{order_id: orders.id}}
        erase: update
        legal_hold: "tax records"
        fields:
          gift_message: {{category: free_text, erase: redact}}
processing:
  - {{purpose: orders, lawful_basis: contract, categories: [contact, name], recipients: [carrier],
     retention: "10 years"}}
"""


def email(i: int) -> str:
    return f"user{i}@example.com"


def users(n: int) -> Iterator[tuple[object, ...]]:
    day = dt.date(2024, 1, 1)
    for i in range(1, n + 1):
        yield (i, email(i), f"User {i}", day)


def orders(n: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(1)
    day = dt.date(2025, 1, 1)
    for i in range(1, 3 * n + 1):
        user = (i - 1) // 3 + 1  # three orders per user
        yield (
            i,
            user,
            day,
            rng.randrange(100, 99999),
            f"User {user}",
            "leave at the door" if i % 7 == 0 else None,
        )


def items(n: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(2)
    for i in range(1, 3 * n + 1):
        order = rng.randrange(1, 3 * n + 1)  # three per order on average, spread at random
        yield (
            i,
            order,
            f"SKU-{i % 997}",
            rng.randrange(100, 9999),
            "happy birthday" if i % 11 == 0 else None,
        )


def build_sqlite(path: Path, n: int) -> str:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    for ddl in SCHEMA:
        conn.execute(ddl)
    conn.executemany(
        "INSERT INTO users VALUES (?,?,?,?)", ((i, e, nm, d.isoformat()) for i, e, nm, d in users(n))
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?,?,?,?,?,?)",
        ((i, u, d.isoformat(), t, s, no) for i, u, d, t, s, no in orders(n)),
    )
    conn.executemany("INSERT INTO order_items VALUES (?,?,?,?,?)", items(n))
    for ddl in INDEXES:
        conn.execute(ddl)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return f"sqlite:///{path}"


def build_postgres(n: int) -> tuple[str, str] | None:
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = "secops_bench_" + uuid.uuid4().hex[:8]
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"postgresql: skipped ({type(exc.orig).__name__})")
        return None
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        with conn.cursor() as cur:
            for ddl in SCHEMA:
                cur.execute(ddl)
            for table, rows in (("users", users(n)), ("orders", orders(n)), ("order_items", items(n))):
                with cur.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for ddl in INDEXES:
                cur.execute(ddl)
        conn.commit()
        conn.execute("ANALYZE")
    admin.dispose()
    return url, name


def measure(label: str, url: str, n: int, runs: int, workdir: Path, seed: int = 42) -> None:
    map_path = workdir / f"map-{label}.yaml"
    map_path.write_text(MAP.format(url=url))
    datamap = load_map(map_path)
    connector = SqlConnector(datamap)
    warnings = check_map(connector)
    print(f"{label}: map check warnings: {len(warnings)}")
    for w in warnings:
        print(f"  {w.split(': ', 2)[-1]}")
    t0 = time.perf_counter()
    default_classifier()  # built once per process (the CLI pays it once, a worker keeps it)
    print(f"{label}: DLP classifier built in {time.perf_counter() - t0:.3f} s (not in the figures)")
    rng = random.Random(seed)
    times: dict[str, list[float]] = {
        "export, no mentions": [],
        "export with mentions": [],
        "erase+verify": [],
    }
    rows = []
    for subject_id in rng.sample(range(1, n + 1), runs):
        subject = {"email": email(subject_id)}
        t0 = time.perf_counter()
        doc = export_subject(datamap, subject, connector, mentions=False)
        times["export, no mentions"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        export_subject(datamap, subject, connector)
        times["export with mentions"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = erase_subject(datamap, subject, connector, key=KEY)
        times["erase+verify"].append(time.perf_counter() - t0)
        assert result.verified and doc["records"], (subject, result)
        rows.append(len(doc["records"]))
    connector.close()
    for what, values in times.items():
        print(
            f"{label}: {what:<21} median {statistics.median(values):.3f} s  "
            f"range {min(values):.3f}-{max(values):.3f} s  runs {runs}  "
            f"(rows per subject {min(rows)}-{max(rows)})"
        )


def add_text_indexes(url: str) -> None:
    """Run the statements ``map check`` prints for the free-text columns."""
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(bind=engine, only=["orders", "order_items"])
    statements = [
        ddl
        for table, column in (("orders", "notes"), ("order_items", "gift_message"))
        for ddl in substring_index_ddl(engine.dialect.name, meta.tables[table], column)
    ]
    if engine.dialect.name == "sqlite":  # the trigger bodies hold their own ';'
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.executescript(";\n".join(statements) + ";\nANALYZE;")
        conn.close()
    else:
        with engine.begin() as c:
            for ddl in statements:
                c.execute(sa.text(ddl))
            c.execute(sa.text("ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print(f"users {args.users:,}, orders {3 * args.users:,}, order items {3 * args.users:,}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        url = build_sqlite(workdir / "shop.db", args.users)
        print(f"sqlite: built in {time.perf_counter() - t0:.1f} s")
        measure("sqlite", url, args.users, args.runs, workdir)
        t0 = time.perf_counter()
        add_text_indexes(url)
        print(f"sqlite: FTS5 trigram tables on the free-text columns built in "
              f"{time.perf_counter() - t0:.1f} s")
        measure("sqlite+fts5", url, args.users, args.runs, workdir, seed=43)
        if not args.no_postgres:
            t0 = time.perf_counter()
            built = build_postgres(args.users)
            if built is not None:
                pg_url, name = built
                print(f"postgresql: built in {time.perf_counter() - t0:.1f} s")
                try:
                    measure("postgresql", pg_url, args.users, args.runs, workdir)
                    t0 = time.perf_counter()
                    add_text_indexes(pg_url)
                    print(
                        f"postgresql: pg_trgm GIN indexes on the free-text columns built in "
                        f"{time.perf_counter() - t0:.1f} s"
                    )
                    measure("postgresql+trgm", pg_url, args.users, args.runs, workdir, seed=43)
                finally:
                    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                    with admin.connect() as c:
                        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()


if __name__ == "__main__":
    main()
