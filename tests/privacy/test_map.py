"""Bad maps are clear errors naming the file, the line and the key; `map check`; ROPA."""

from __future__ import annotations

import csv
import io
import json
import socket
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from secops.cli.privacy import privacy
from secops.privacy import MapError, load_map
from tests.privacy import shop
from tests.privacy.conftest import Shop

GOOD = shop.MAP.format(url="sqlite:///unused.db")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(privacy, list(args))
    return result.exit_code, result.stdout, result.stderr


def line_of(text: str, needle: str, after: str | None = None) -> int:
    """1-based number of the first line containing ``needle`` (after the line with ``after``)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def load_text(tmp_path: Path, text: str) -> MapError:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(MapError) as err:
        load_map(path)
    return err.value


def test_the_sample_map_loads_with_tables_parents_first() -> None:
    dm = load_map_text(GOOD)
    order = list(dm.stores["shop"].tables)
    for child, parent in [
        ("orders", "users"),
        ("order_items", "orders"),
        ("returns", "order_items"),
        ("ticket_messages", "support_tickets"),
        ("events", "users"),
    ]:
        assert order.index(parent) < order.index(child)
    assert dm.stores["shop"].tables["order_items"].deletes_rows is False  # legal hold wins over delete


def load_map_text(text: str) -> object:
    from secops.privacy import parse_map

    return parse_map(text, where="m.yaml")


@pytest.mark.parametrize(
    ("change", "needle", "after", "key", "problem"),
    [
        (
            ("references: {{order_id: orders.id}}", "references: {{order_id: ordrs.id}}"),
            "order_id: ordrs.id",
            None,
            "stores.shop.tables.order_items.references.order_id",
            "unknown table 'ordrs' (not in this store's tables)",
        ),
        (
            (
                "      users:\n        primary_key: id\n",
                "      users:\n        references: {{id: events.id}}\n        primary_key: id\n",
            ),
            "references: {{user_id: users.id}}",
            "      events:",
            "stores.shop.tables.events.references.user_id",
            "references form a cycle: users -> events -> users",
        ),
        (
            ("      newsletter:\n        primary_key: id\n", "      newsletter:\n"),
            "newsletter:",
            None,
            "stores.shop.tables.newsletter",
            "missing primary_key",
        ),
        (
            (
                "shipping_name: {{category: name, erase: redact}}",
                "shipping_name: {{category: name, erase: scramble}}",
            ),
            "scramble",
            None,
            "stores.shop.tables.orders.fields.shipping_name.erase",
            "unknown strategy 'scramble' (known: hash, keep, null, redact)",
        ),
        (
            (
                "email: {{category: contact, erase: hash}}\n          phone",
                "email: {{category: contact, erase: keep}}\n          phone",
            ),
            "identities: {{email: email",
            None,
            "stores.shop.tables.users.identities.email",
            "identity column 'email' of kept rows must be a field erased by a strategy other than keep "
            "(else the subject stays identifiable)",
        ),
        (
            (
                "      users:\n        primary_key: id\n        identities: {{email: email, phone: phone}}\n"
                "        erase: update",
                "      users:\n        primary_key: id\n        identities: {{email: email, "
                "phone: phone}}\n        erase: delete",
            ),
            "erase: delete",
            "      users:",
            "stores.shop.tables.users.erase",
            "users rows are deleted but orders.user_id keeps pointing at them (orders is on legal hold): "
            "erase users by update, or user_id with null",
        ),
        (
            ("lawful_basis: contract", "lawful_basis: because"),
            "because",
            None,
            "processing.0.lawful_basis",
            "must be one of consent, contract, legal_obligation, vital_interests, "
            "public_task, legitimate_interests",
        ),
        (("version: 1", "version: 2"), "version: 2", None, "version", "must be 1"),
        (
            ("      returns:\n", "      returns:\n        colour: blue\n"),
            "colour: blue",
            None,
            "stores.shop.tables.returns.colour",
            "unknown key (allowed: primary_key, identities, references, erase, "
            "fields, legal_hold, retention_days, retention_column, description)",
        ),
        (
            ("retention_days: 3650", "retention_days: -5"),
            "retention_days: -5",
            None,
            "stores.shop.tables.orders.retention_days",
            "must be a whole number of days, at least 1",
        ),
    ],
)
def test_each_bad_map_is_a_clear_error(
    tmp_path: Path, change: tuple[str, str], needle: str, after: str | None, key: str, problem: str
) -> None:
    old, new = (c.replace("{{", "{").replace("}}", "}") for c in change)
    good = GOOD
    assert old in good
    bad = good.replace(old, new, 1)
    err = load_text(tmp_path, bad)
    line = line_of(bad, needle.replace("{{", "{").replace("}}", "}"), after)
    assert str(err) == f"{tmp_path / 'bad.yaml'}:{line}: {key}: {problem}"
    assert (err.file, err.line, err.key) == (str(tmp_path / "bad.yaml"), line, key)


def test_yaml_syntax_errors_and_duplicate_keys_name_the_line(tmp_path: Path) -> None:
    err = load_text(tmp_path, "version: 1\nstores:\n  shop: [unclosed\n")
    assert str(err).startswith(f"{tmp_path / 'bad.yaml'}:4: not valid YAML (")
    bad = GOOD.replace("      returns:\n", "      returns:\n        primary_key: id\n", 1)
    err = load_text(tmp_path, bad)
    assert str(err) == (
        f"{tmp_path / 'bad.yaml'}:{line_of(bad, 'primary_key: id', '      returns:') + 1}: "
        "stores.shop.tables.returns.primary_key: duplicate key"
    )


FREE_TEXT = [
    ("orders", "notes"),
    ("order_items", "gift_message"),
    ("returns", "reason"),
    ("support_tickets", "body"),
    ("ticket_messages", "body"),
]


def test_map_check_accepts_the_shop_and_warns_of_a_missing_index(shop_db: Shop) -> None:
    code, out, err = run("map", "check", str(shop_db.map_path))
    assert code == 0
    assert out == f"ok: {shop_db.map_path}: 1 stores, 9 tables, 6 warnings\n"
    text = shop_db.map_path.read_text()
    lines = err.splitlines()
    assert lines[0] == (
        f"warning: {shop_db.map_path}:{line_of(text, 'identities: {email: email, phone: phone}')}: "
        "stores.shop.tables.users.identities.phone: shop.users.phone has no index "
        "(every export and erasure reads the whole table)"
    )
    expected = []
    for table, column in FREE_TEXT:
        line = line_of(text, f"{column}: {{category: free_text", f"      {table}:")
        expected.append(
            f"warning: {shop_db.map_path}:{line}: stores.shop.tables.{table}.fields.{column}: "
            f"shop.{table}.{column} is free text: every export's mention search reads it whole; "
            "serve it with: "
        )
    assert [line[: len(e)] for line, e in zip(lines[1:], expected, strict=True)] == expected
    notes = next(line for line in lines if "shop.orders.notes is free text" in line)
    notes = notes.split("serve it with: ")[1]
    if shop_db.kind == "postgresql":
        assert notes == ('CREATE EXTENSION IF NOT EXISTS pg_trgm; '
                         'CREATE INDEX "ix_orders_notes_trgm" ON "orders" USING gin ("notes" gin_trgm_ops);')
    else:
        assert notes == (
            'CREATE VIRTUAL TABLE "orders_notes_fts" USING fts5("notes", tokenize=\'trigram\', '
            "content='orders', content_rowid='id'); "
            'INSERT INTO "orders_notes_fts"("orders_notes_fts") VALUES (\'rebuild\'); '
            'CREATE TRIGGER "orders_notes_fts_ai" AFTER INSERT ON "orders" BEGIN '
            'INSERT INTO "orders_notes_fts"(rowid, "notes") VALUES (new."id", new."notes"); END; '
            'CREATE TRIGGER "orders_notes_fts_ad" AFTER DELETE ON "orders" BEGIN '
            'INSERT INTO "orders_notes_fts"("orders_notes_fts", rowid, "notes") '
            "VALUES ('delete', old.\"id\", old.\"notes\"); END; "
            'CREATE TRIGGER "orders_notes_fts_au" AFTER UPDATE OF "notes" ON "orders" BEGIN '
            'INSERT INTO "orders_notes_fts"("orders_notes_fts", rowid, "notes") '
            "VALUES ('delete', old.\"id\", old.\"notes\"); "
            'INSERT INTO "orders_notes_fts"(rowid, "notes") VALUES (new."id", new."notes"); END;'
        )
    with shop_db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_orders_user_id"))
        if shop_db.kind == "postgresql":  # what map check printed, as a script
            conn.exec_driver_sql(notes)
    if shop_db.kind == "sqlite":
        script = sqlite3.connect(shop_db.url.removeprefix("sqlite:///"))
        script.executescript(notes)
        script.close()
    code, _, err = run("map", "check", str(shop_db.map_path))
    assert code == 0
    assert "stores.shop.tables.orders.references.user_id: shop.orders.user_id has no index" in err
    assert "shop.orders.notes is free text" not in err
    assert "shop.support_tickets.body is free text" in err


@pytest.mark.parametrize(
    ("old", "new", "needle", "after", "message"),
    [
        (
            "      newsletter:\n",
            "      mailing_list:\n",
            "mailing_list:",
            None,
            "stores.shop.tables.mailing_list: unknown table 'mailing_list' in store 'shop'",
        ),
        (
            "gift_message: {category: free_text",
            "gift_note: {category: free_text",
            "gift_note",
            None,
            "stores.shop.tables.order_items.fields.gift_note: "
            "unknown column 'gift_note' of table 'order_items'",
        ),
        (
            "sku: {category: purchase, erase: keep}",
            'sku: {category: purchase, erase: "null"}',
            "sku:",
            None,
            "stores.shop.tables.order_items.fields.sku.erase: strategy 'null' on a NOT NULL column (sku)",
        ),
        (
            "newsletter:\n        primary_key: id\n        identities: {email: email}",
            "newsletter:\n        primary_key: id\n        identities: {email: mail}",
            "identities: {email: mail}",
            None,
            "stores.shop.tables.newsletter.identities.email: unknown column 'mail' of table 'newsletter'",
        ),
    ],
)
def test_map_check_finds_what_does_not_match_the_store(
    shop_db: Shop, old: str, new: str, needle: str, after: str | None, message: str
) -> None:
    text = shop_db.map_path.read_text()
    assert old in text
    bad = text.replace(old, new, 1)
    path = shop_db.write_map(bad, "bad.yaml")
    code, out, err = run("map", "check", str(path))
    assert (code, out) == (2, "")
    assert err == f"error: {path}:{line_of(bad, needle, after)}: {message}\n"


def test_a_hash_on_a_number_column_is_refused(shop_db: Shop) -> None:
    text = shop_db.map_path.read_text()
    bad = text.replace(
        'user_id: {category: online_identifier, erase: "null"}',
        "user_id: {category: online_identifier, erase: hash}",
    )
    path = shop_db.write_map(bad, "bad.yaml")
    code, _, err = run("map", "check", str(path))
    assert code == 2
    assert err == (
        f"error: {path}:{line_of(bad, 'user_id: {category: online_identifier, erase: hash}')}: "
        "stores.shop.tables.events.fields.user_id.erase: strategy 'hash' needs a text column "
        "(user_id is INTEGER)\n"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_unreachable_store_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    url = (
        f"sqlite:///{tmp_path / 'gone' / 'shop.db'}"
        if kind == "sqlite"
        else f"postgresql+psycopg://secops:pw-not-shown@127.0.0.1:{_closed_port()}/shop"
    )
    path = tmp_path / "map.yaml"
    text = shop.MAP.format(url=url)
    path.write_text(text)
    line = line_of(text, "url:")
    for args in (
        ["map", "check", str(path)],
        ["export", "--local", "--map", str(path), "--identity", "email=a@b.c", "--json"],
    ):
        code, out, err = run(*args)
        assert (code, out) == (2, "")
        assert err.startswith(f"error: {path}:{line}: stores.shop.url: store unreachable (")
        assert err.count("\n") == 1 and "pw-not-shown" not in err


def test_url_secret_comes_from_the_secret_reader(shop_db: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    text = shop_db.map_path.read_text().replace(f"url: {shop_db.url}", "url_secret: shop_db_url")
    path = shop_db.write_map(text, "secret.yaml")
    monkeypatch.setenv("SECOPS_DATA_DIR", str(shop_db.tmp / "var"))
    code, _, err = run("map", "check", str(path))
    assert code == 2
    assert err == (
        f"error: {path}:{line_of(text, 'url_secret:')}: stores.shop.url_secret: secret "
        "'shop_db_url' is not set\n"
    )
    monkeypatch.setenv("SECOPS_SHOP_DB_URL", shop_db.url)
    code, out, _ = run("map", "check", str(path))
    assert code == 0 and out.startswith("ok: ")


def test_ropa_in_three_formats(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(GOOD)
    code, out, _ = run("ropa", "--map", str(path), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["controller"] == {
        "name": "Example Shop Ltd",
        "contact": "privacy@shop.example",
        "dpo": "dpo@shop.example",
    }
    assert [a["purpose"] for a in doc["activities"]] == ["order fulfilment", "newsletter", "fraud prevention"]
    fraud = doc["activities"][2]
    assert fraud == {
        "purpose": "fraud prevention",
        "lawful_basis": "legitimate_interests",
        "categories": ["online_identifier"],
        "subjects": [],
        "recipients": ["payment processor"],
        "retention": "90 days",
        "transfers": None,
        "measures": "pseudonymised after 30 days",
        "locations": ["shop.events.ip", "shop.events.user_agent", "shop.events.user_id"],
    }
    inventory = {(r["table"], r["column"]): r for r in doc["inventory"]}
    assert inventory[("orders", "notes")] == {
        "store": "shop",
        "table": "orders",
        "column": "notes",
        "category": "free_text",
        "erase": "redact",
        "retention_days": 3650,
        "legal_hold": "tax records, 10 years (Art 17(3)(b))",
    }
    assert inventory[("addresses", "street")]["erase"] == "delete"
    assert len(doc["inventory"]) == 16  # 3+2+2+2+1+1+1+1+3 fields in the map

    code, out, _ = run("ropa", "--map", str(path), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["lawful_basis"] for r in rows] == ["contract", "consent", "legitimate_interests"]
    assert rows[1]["subjects"] == "subscribers" and rows[0]["recipients"] == "carrier"

    code, out, _ = run("ropa", "--map", str(path), "--format", "md")
    assert out.startswith("# Records of processing activities (Art 30 GDPR)\n")
    assert (
        "| fraud prevention | legitimate_interests | online_identifier | - | payment processor | 90 days"
        " | - | pseudonymised after 30 days | shop.events.ip; shop.events.user_agent; shop.events.user_id |"
    ) in out.splitlines()
