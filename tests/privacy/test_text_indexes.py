"""The mention search with the index ``map check`` recommends for free-text columns (an
FTS5 trigram table on SQLite, a pg_trgm GIN index on PostgreSQL): the same mentions as
a scan, and the same as an independent search in Python over every row."""

from __future__ import annotations

import sqlalchemy as sa

from secops.privacy import erase_subject, export_subject, load_map
from secops.privacy.connector import SqlConnector, check_map, substring_index_ddl
from secops.privacy.datamap import FREE_TEXT
from secops.privacy.mentions import MentionFinder
from tests.privacy import shop
from tests.privacy.conftest import Keys, Shop

SUBJECT = {"email": shop.ALICE_EMAIL, "phone": shop.ALICE_PHONE}


def _mentions(doc: dict) -> list[tuple[str, int, str]]:
    return sorted((m["table"], m["primary_key"]["id"], m["column"]) for m in doc["mentions"])


def _oracle(shop_db: Shop, doc: dict) -> list[tuple[str, int, str]]:
    """Every free-text value of every row read whole, checked in Python: rows of other
    subjects that name one of the subject's values."""
    dm = load_map(shop_db.map_path)
    own = {(r["table"], r["primary_key"]["id"]) for r in doc["records"]}
    rows = shop.dump(shop_db.engine)
    finder, values = MentionFinder(), list(SUBJECT.values())
    found = []
    for table in dm.stores["shop"].tables.values():
        for column, f in table.fields.items():
            if f.category != FREE_TEXT:
                continue
            for pk, row in rows[table.name].items():
                text = row[column]
                if (table.name, pk) not in own and isinstance(text, str) and finder.names(text, values):
                    found.append((table.name, pk, column))
    return sorted(found)


def test_mentions_through_the_recommended_index_are_those_of_a_scan(shop_db: Shop, keys: Keys) -> None:
    dm = load_map(shop_db.map_path)
    connector = SqlConnector(dm)
    try:
        scanned = export_subject(dm, SUBJECT, connector)
        warnings = check_map(connector)
        store = dm.stores["shop"]
        with connector.connect(store) as conn:
            tables = connector.tables(store, conn)
        free = [(t.name, c) for t in store.tables.values()
                for c, f in t.fields.items() if f.category == FREE_TEXT]
        ddl = {(t, c): substring_index_ddl(shop_db.kind, tables[t], c) for t, c in free}
    finally:
        connector.close()
    expected = _oracle(shop_db, scanned)
    assert ("support_tickets", 202, "body") in expected and len(expected) >= 3  # ALICE@..., phone spellings
    assert _mentions(scanned) == expected
    assert len(free) == 5 and len(ddl) == 5
    for (table, column), statements in ddl.items():
        # map check names the column and prints exactly these statements
        assert len(statements) == (5 if shop_db.kind == "sqlite" else 2)
        assert [w.split(": ", 2)[2] for w in warnings if f"shop.{table}.{column} is free text" in w] == [
            f"shop.{table}.{column} is free text: every export's mention search reads it whole; "
            "serve it with: " + "; ".join(statements) + ";"]

    with shop_db.engine.begin() as conn:
        for statements in ddl.values():
            for statement in statements:
                conn.execute(sa.text(statement))
    connector = SqlConnector(dm)
    executed: list[str] = []
    sa.event.listen(connector.engine(dm.stores["shop"]), "before_cursor_execute",
                    lambda _c, _cur, statement, *_a: executed.append(statement))
    try:
        assert [w for w in check_map(connector) if "is free text" in w] == []
        indexed = export_subject(dm, SUBJECT, connector)
        # the index stays current through an erasure (its triggers rewrite the redacted text)
        assert erase_subject(dm, SUBJECT, connector, key=keys.hmac).verified
    finally:
        connector.close()
    assert _mentions(indexed) == expected and indexed["records"] == scanned["records"]
    if shop_db.kind == "sqlite":
        assert sum(" MATCH " in s for s in executed) >= len(free)  # the FTS tables were used
        with shop_db.engine.begin() as conn:
            for table, column in free:
                fts = f"{table}_{column}_fts"
                conn.execute(sa.text(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')"))
