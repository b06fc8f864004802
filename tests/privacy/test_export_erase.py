"""Export and erasure against the sample shop on real SQLite and PostgreSQL stores.

Oracles: the seed rows of ``tests/privacy/shop.py`` and the hand-written list of
Alice's rows; pseudonyms are recomputed here from the documented formula.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner

from secops.cli.privacy import privacy
from secops.privacy import erase_subject, load_map
from secops.privacy.connector import SqlConnector
from secops.privacy.erase import erase_one_store
from tests.privacy import shop
from tests.privacy.conftest import Keys, Shop

ALICE = ["--identity", f"email={shop.ALICE_EMAIL}", "--identity", f"ip={shop.ALICE_IP}"]
REDACTED = "[REDACTED]"


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def pseudo(key: bytes, value: str) -> str:
    return "hmac:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(privacy, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_export_is_exactly_the_subjects_rows_and_the_mentions(shop_db: Shop, keys: Keys) -> None:
    code, out, err = run(
        "export",
        "--local",
        "--map",
        str(shop_db.map_path),
        *ALICE,
        "--identity",
        f"phone={shop.ALICE_PHONE}",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["subject"] == {"email": shop.ALICE_EMAIL, "ip": shop.ALICE_IP, "phone": shop.ALICE_PHONE}
    got = {(r["store"], r["table"], r["primary_key"]["id"]): r for r in doc["records"]}
    expected = {("shop", t, i) for t, ids in shop.ALICE_ROWS.items() for i in ids}
    assert set(got) == expected
    assert len(doc["records"]) == len(expected)
    seed = {(t, row["id"]): row for t, rows in shop.SEED.items() for row in rows}
    for (_, table, pk), record in got.items():
        assert record["primary_key"] == {"id": pk}
        assert record["data"] == {k: _json(v) for k, v in seed[(table, pk)].items()}
    # Bob's ticket quotes her address in capitals, Carol's her number in national form,
    # Bob's party ticket her number without spaces; 204's number only shares a prefix.
    assert sorted((m["table"], m["primary_key"]["id"], m["column"]) for m in doc["mentions"]) == [
        ("support_tickets", 202, "body"),
        ("support_tickets", 203, "body"),
        ("support_tickets", 205, "body"),
    ]
    assert all(m["store"] == "shop" for m in doc["mentions"])
    assert set(doc) == {"subject", "records", "mentions"}


def test_export_of_a_subject_by_ip_only_follows_the_events(shop_db: Shop, keys: Keys) -> None:
    code, out, _ = run(
        "export", "--local", "--map", str(shop_db.map_path), "--identity", f"ip={shop.ALICE_IP}", "--json"
    )
    assert code == 0
    doc = json.loads(out)
    assert sorted((r["table"], r["primary_key"]["id"]) for r in doc["records"]) == [
        ("events", 61),
        ("events", 62),
    ]
    assert doc["mentions"] == []


def test_export_of_an_unknown_person_is_empty_and_bad_identities_are_errors(
    shop_db: Shop, keys: Keys
) -> None:
    code, out, _ = run(
        "export",
        "--local",
        "--map",
        str(shop_db.map_path),
        "--identity",
        "email=nobody@example.com",
        "--json",
    )
    assert (code, json.loads(out)["records"]) == (0, [])
    code, out, err = run(
        "export", "--local", "--map", str(shop_db.map_path), "--identity", "iban=GB00", "--json"
    )
    assert code == 2 and out == ""
    assert err == "error: the map has no identity of type 'iban' (known: email, ip, phone)\n"
    code, _, err = run("export", "--local", "--map", str(shop_db.map_path), "--identity", "email", "--json")
    assert (code, err) == (2, "error: an identity reads TYPE=VALUE\n")


def expected_after_alice(before: dict[str, dict[int, dict[str, Any]]], key: bytes) -> dict[str, Any]:
    after = copy.deepcopy(before)
    for table in ("addresses", "returns", "support_tickets", "ticket_messages", "newsletter"):
        for pk in shop.ALICE_ROWS[table]:
            del after[table][pk]
    after["users"][1].update(email=pseudo(key, shop.ALICE_EMAIL), phone=None, name=None)
    after["orders"][100].update(shipping_name=REDACTED, notes=REDACTED)
    after["orders"][101].update(shipping_name=REDACTED)  # its notes were NULL and stay so
    after["order_items"][1000].update(gift_message=REDACTED)  # legal hold: kept, not deleted
    after["events"][60].update(ip=pseudo(key, "198.51.100.4"), user_agent=None, user_id=None)
    for pk in (61, 62):
        after["events"][pk].update(ip=pseudo(key, shop.ALICE_IP), user_agent=None, user_id=None)
    return after


EXPECTED_ACTIONS = [
    ("events", "hash", 3),
    ("events", "null", 3),
    ("newsletter", "delete", 1),
    ("ticket_messages", "delete", 3),
    ("support_tickets", "delete", 2),
    ("returns", "delete", 1),
    ("order_items", "redact", 3),
    ("orders", "redact", 2),
    ("addresses", "delete", 2),
    ("users", "hash", 1),
    ("users", "null", 1),
]


def test_erase_applies_each_strategy_and_touches_nobody_else(shop_db: Shop, keys: Keys) -> None:
    before = shop.dump(shop_db.engine)
    receipt_file = shop_db.tmp / "receipt.json"
    code, out, err = run(
        "erase", "--local", "--map", str(shop_db.map_path), *ALICE, "--json", "--receipt", str(receipt_file)
    )
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"subject_hash", "actions", "verified", "receipt"}
    assert doc["verified"] is True
    # children before parents: the order is the store's reverse topological order
    assert [(a["table"], a["strategy"], a["rows"]) for a in doc["actions"]] == EXPECTED_ACTIONS
    assert all(
        set(a) == {"store", "table", "strategy", "rows"} and a["store"] == "shop" for a in doc["actions"]
    )
    assert shop.dump(shop_db.engine) == expected_after_alice(before, keys.hmac)
    assert shop.dangling_references(shop_db.engine) == []
    canonical = json.dumps(
        sorted({"email": shop.ALICE_EMAIL, "ip": shop.ALICE_IP}.items()), separators=(",", ":")
    )
    expected_hash = "hmac-sha256:" + hmac.new(keys.hmac, canonical.encode(), hashlib.sha256).hexdigest()
    assert doc["subject_hash"] == expected_hash == doc["receipt"]["subject_hash"]
    assert json.loads(receipt_file.read_text()) == doc["receipt"]
    receipt_text = json.dumps(doc["receipt"])
    for value in ("alice", "Alice", "Liddell", "7946", "203.0.113", "198.51.100.4", "Rabbit", "Hatter"):
        assert value not in receipt_text

    # A second run finds nothing left, changes nothing and still verifies.
    after = shop.dump(shop_db.engine)
    code, out, _ = run("erase", "--local", "--map", str(shop_db.map_path), *ALICE, "--json")
    assert code == 0
    assert json.loads(out)["actions"] == [] and json.loads(out)["verified"] is True
    assert shop.dump(shop_db.engine) == after


def test_verification_finds_a_row_written_between_erase_and_verify(shop_db: Shop, keys: Keys) -> None:
    datamap = load_map(shop_db.map_path)
    connector = SqlConnector(datamap)

    def resubscribe() -> None:
        with shop_db.engine.begin() as conn:
            conn.execute(shop.newsletter.insert().values(id=49, email=shop.ALICE_EMAIL, topics="tea"))

    subject = {"email": shop.ALICE_EMAIL}
    result = erase_subject(datamap, subject, connector, key=keys.hmac, between=resubscribe)
    assert result.verified is False
    assert [(s.store, s.status, s.remaining) for s in result.stores] == [
        ("shop", "committed", {"newsletter": 1})
    ]

    # the next run erases the row that came back, and verifies
    result = erase_subject(datamap, subject, connector, key=keys.hmac)
    connector.close()
    assert [(a.table, a.strategy, a.rows) for a in result.actions] == [("newsletter", "delete", 1)]
    assert result.verified is True


def test_verification_rechecks_erased_rows_of_kept_tables(shop_db: Shop, keys: Keys) -> None:
    datamap = load_map(shop_db.map_path)
    connector = SqlConnector(datamap)

    def restore_name() -> None:
        with shop_db.engine.begin() as conn:
            conn.execute(sa.update(shop.orders).where(shop.orders.c.id == 100).values(shipping_name="Alice"))

    result = erase_subject(
        datamap, {"email": shop.ALICE_EMAIL}, connector, key=keys.hmac, between=restore_name
    )
    connector.close()
    assert result.verified is False
    assert result.stores[0].remaining == {"orders": 1}


def _refuse_deletes(shop_db: Shop) -> None:
    """A database trigger that makes deleting a ticket message fail, as an archive would."""
    with shop_db.engine.begin() as conn:
        if shop_db.kind == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER keep_messages BEFORE DELETE ON ticket_messages "
                    "BEGIN SELECT RAISE(ABORT, 'messages are archived'); END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'messages are archived'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER keep_messages BEFORE DELETE ON ticket_messages "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )


def test_a_failing_store_is_rolled_back_whole_and_reported(shop_db: Shop, keys: Keys) -> None:
    _refuse_deletes(shop_db)
    before = shop.dump(shop_db.engine)
    code, out, err = run("erase", "--local", "--map", str(shop_db.map_path), *ALICE, "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["verified"] is False and doc["actions"] == []
    assert doc["receipt"]["stores"][0]["store"] == "shop"
    assert doc["receipt"]["stores"][0]["status"] == "rolled_back"
    assert "messages are archived" in err and err.startswith("error: store 'shop' rolled back: ")
    assert shop.dump(shop_db.engine) == before  # nothing half-erased (events were erased first)


def test_cli_exit_1_when_the_application_writes_the_subject_back(shop_db: Shop, keys: Keys) -> None:
    """An application trigger re-subscribes deleted addresses inside the erasure."""
    with shop_db.engine.begin() as conn:
        if shop_db.kind == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER resubscribe AFTER DELETE ON newsletter BEGIN "
                    "INSERT INTO newsletter (id, email, topics) VALUES (old.id + 1000, old.email, 'x'); "
                    "END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE FUNCTION resub() RETURNS trigger AS $$ BEGIN "
                    "INSERT INTO newsletter (id, email, topics) VALUES (OLD.id + 1000, OLD.email, 'x'); "
                    "RETURN OLD; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER resubscribe AFTER DELETE ON newsletter "
                    "FOR EACH ROW EXECUTE FUNCTION resub()"
                )
            )
    code, out, err = run("erase", "--local", "--map", str(shop_db.map_path), *ALICE, "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["verified"] is False
    assert doc["receipt"]["verification"] == {
        "verified": False,
        "remaining": [{"store": "shop", "table": "newsletter", "rows": 1}],
    }
    assert err == "left: shop.newsletter: 1 rows still hold personal data\n"


def test_a_failed_verification_pass_is_not_verified(shop_db: Shop, keys: Keys) -> None:
    datamap = load_map(shop_db.map_path)
    connector = SqlConnector(datamap)

    def drop_newsletter() -> None:  # the verification pass cannot read a table any more
        with shop_db.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE newsletter"))

    result = erase_subject(
        datamap, {"email": shop.ALICE_EMAIL}, connector, key=keys.hmac, between=drop_newsletter
    )
    connector.close()
    assert result.verified is False and result.failed is False
    outcome = result.stores[0]
    assert outcome.status == "committed" and outcome.remaining == {}
    assert outcome.verify_error is not None and outcome.verify_error.startswith(
        "store 'shop': transaction rolled back ("
    )
    assert ("newsletter", "delete", 1) in [(a.table, a.strategy, a.rows) for a in result.actions]


def test_erasing_one_store_twice_changes_nothing_the_second_time(shop_db: Shop, keys: Keys) -> None:
    """What a redelivered erasure sub-job does: the second run finds nothing and verifies."""
    dm = load_map(shop_db.map_path)
    store = dm.stores["shop"]
    subject = {"email": shop.ALICE_EMAIL, "ip": shop.ALICE_IP}
    before = shop.dump(shop_db.engine)
    connector = SqlConnector(dm)
    try:
        first = erase_one_store(store, subject, connector, key=keys.hmac)
        assert first.status == "committed" and first.remaining == {} and first.verify_error is None
        assert [(a.table, a.strategy, a.rows) for a in first.actions] == EXPECTED_ACTIONS
        after = shop.dump(shop_db.engine)
        assert after == expected_after_alice(before, keys.hmac)
        second = erase_one_store(store, subject, connector, key=keys.hmac)
    finally:
        connector.close()
    assert second.status == "committed" and second.actions == [] and second.remaining == {}
    assert shop.dump(shop_db.engine) == after
