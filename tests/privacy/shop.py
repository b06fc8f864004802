"""A sample shop application's database and its personal-data map, for the privacy tests.

Chains of references: users -> orders -> order_items -> returns (three deep),
users -> support_tickets -> ticket_messages; the newsletter is keyed by e-mail only,
events by IP address and (optionally) user. Three subjects: Alice (the one the tests
export and erase), Bob and Carol, whose tickets mention Alice.

The seed rows below are the tests' oracle: expected exports and untouched rows are
written against them, not against anything the engine computes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

meta = sa.MetaData()
users = sa.Table(
    "users",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("phone", sa.String(40)),
    sa.Column("name", sa.String(100)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
addresses = sa.Table(
    "addresses",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("street", sa.String(200), nullable=False),
    sa.Column("city", sa.String(100), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
)
orders = sa.Table(
    "orders",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("placed_on", sa.Date, nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("shipping_name", sa.String(100), nullable=False),
    sa.Column("notes", sa.Text),
)
order_items = sa.Table(
    "order_items",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("sku", sa.String(20), nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("gift_message", sa.Text),
)
returns = sa.Table(
    "returns",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("order_item_id", sa.Integer, sa.ForeignKey("order_items.id"), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
)
support_tickets = sa.Table(
    "support_tickets",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
    sa.Column("contact_email", sa.String(255), index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)
ticket_messages = sa.Table(
    "ticket_messages",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.Integer, sa.ForeignKey("support_tickets.id"), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
)
newsletter = sa.Table(
    "newsletter",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(255), nullable=False, index=True),
    sa.Column("topics", sa.String(100), nullable=False),
)
events = sa.Table(
    "events",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), index=True),
    sa.Column("ip", sa.String(45), index=True),
    sa.Column("user_agent", sa.String(200)),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

ALICE_EMAIL, ALICE_PHONE, ALICE_IP = "alice@example.com", "+44 20 7946 0958", "203.0.113.7"
T0 = dt.datetime(2025, 3, 1, 9, 30, 0)

SEED: dict[str, list[dict[str, Any]]] = {
    "users": [
        {"id": 1, "email": ALICE_EMAIL, "phone": ALICE_PHONE, "name": "Alice Liddell", "created_at": T0},
        {
            "id": 2,
            "email": "bob@example.org",
            "phone": "+1 415 555 0100",
            "name": "Bob Stone",
            "created_at": T0 + dt.timedelta(days=1),
        },
        {
            "id": 3,
            "email": "carol@example.net",
            "phone": None,
            "name": "Carol Jones",
            "created_at": T0 + dt.timedelta(days=2),
        },
    ],
    "addresses": [
        {"id": 10, "user_id": 1, "street": "1 Rabbit Hole", "city": "Oxford", "country": "GB"},
        {"id": 11, "user_id": 1, "street": "2 Looking Glass Lane", "city": "London", "country": "GB"},
        {"id": 12, "user_id": 2, "street": "9 Market St", "city": "San Francisco", "country": "US"},
    ],
    "orders": [
        {
            "id": 100,
            "user_id": 1,
            "placed_on": dt.date(2025, 4, 1),
            "total_cents": 4200,
            "shipping_name": "Alice Liddell",
            "notes": "leave with the cat",
        },
        {
            "id": 101,
            "user_id": 1,
            "placed_on": dt.date(2025, 5, 2),
            "total_cents": 1999,
            "shipping_name": "A. Liddell",
            "notes": None,
        },
        {
            "id": 102,
            "user_id": 2,
            "placed_on": dt.date(2025, 5, 3),
            "total_cents": 500,
            "shipping_name": "Bob Stone",
            "notes": "ring twice",
        },
    ],
    "order_items": [
        {"id": 1000, "order_id": 100, "sku": "TEA-01", "price_cents": 2100, "gift_message": "For the Hatter"},
        {"id": 1001, "order_id": 100, "sku": "CAKE-02", "price_cents": 2100, "gift_message": None},
        {"id": 1002, "order_id": 101, "sku": "MAP-03", "price_cents": 1999, "gift_message": None},
        {"id": 1003, "order_id": 102, "sku": "TEA-01", "price_cents": 500, "gift_message": "Cheers, Bob"},
    ],
    "returns": [
        {"id": 5000, "order_item_id": 1001, "reason": "cake was a lie, write to alice@example.com"},
        {"id": 5001, "order_item_id": 1003, "reason": "wrong flavour"},
    ],
    "support_tickets": [
        {
            "id": 200,
            "user_id": 1,
            "contact_email": None,
            "subject": "Where is my tea?",
            "body": "Order 100 has not arrived.",
        },
        {
            "id": 201,
            "user_id": None,
            "contact_email": ALICE_EMAIL,
            "subject": "Guest question",
            "body": "Do you ship to Wonderland?",
        },
        {
            "id": 202,
            "user_id": 2,
            "contact_email": None,
            "subject": "Gift for a friend",
            "body": "Please send the gift card to ALICE@example.com, thanks",
        },
        {
            "id": 203,
            "user_id": 3,
            "contact_email": None,
            "subject": "Call back",
            "body": "My friend asked you to phone her on 020 7946 0958 tomorrow.",
        },
        {
            "id": 204,
            "user_id": 3,
            "contact_email": None,
            "subject": "Refund",
            "body": "Refund to my card please, phone 020 7946 1234.",
        },
        {
            "id": 205,
            "user_id": 2,
            "contact_email": None,
            "subject": "Party",
            "body": "Invite the friend who texts from +442079460958 too",
        },
    ],
    "ticket_messages": [
        {"id": 300, "ticket_id": 200, "body": "Sorry Alice, it ships tomorrow."},
        {"id": 301, "ticket_id": 200, "body": "Thanks! Copy my lawyer, bob.lawyer@example.org"},
        {"id": 302, "ticket_id": 201, "body": "Yes we do."},
        {"id": 303, "ticket_id": 202, "body": "Done."},
    ],
    "newsletter": [
        {"id": 40, "email": ALICE_EMAIL, "topics": "tea,cake"},
        {"id": 41, "email": "carol@example.net", "topics": "maps"},
        {"id": 42, "email": "dave@example.com", "topics": "tea"},
    ],
    "events": [
        {
            "id": 60,
            "user_id": 1,
            "ip": "198.51.100.4",
            "user_agent": "Firefox/130",
            "kind": "login",
            "at": T0,
        },
        {
            "id": 61,
            "user_id": 1,
            "ip": ALICE_IP,
            "user_agent": "Safari/17",
            "kind": "login",
            "at": T0 + dt.timedelta(hours=1),
        },
        {
            "id": 62,
            "user_id": None,
            "ip": ALICE_IP,
            "user_agent": "Safari/17",
            "kind": "view",
            "at": T0 + dt.timedelta(hours=2),
        },
        {
            "id": 63,
            "user_id": 2,
            "ip": "192.0.2.99",
            "user_agent": "curl/8",
            "kind": "login",
            "at": T0 + dt.timedelta(hours=3),
        },
        {
            "id": 64,
            "user_id": 3,
            "ip": "198.51.100.77",
            "user_agent": None,
            "kind": "view",
            "at": T0 + dt.timedelta(hours=4),
        },
    ],
}

# Alice's rows when she is found by e-mail and IP (the oracle for export and erasure).
ALICE_ROWS: dict[str, set[int]] = {
    "users": {1},
    "addresses": {10, 11},
    "orders": {100, 101},
    "order_items": {1000, 1001, 1002},
    "returns": {5000},
    "support_tickets": {200, 201},
    "ticket_messages": {300, 301, 302},
    "newsletter": {40},
    "events": {60, 61, 62},
}

MAP = """\
version: 1
controller: {{name: Example Shop Ltd, contact: privacy@shop.example, dpo: dpo@shop.example}}
stores:
  shop:
    url: {url}
    tables:
      users:
        primary_key: id
        identities: {{email: email, phone: phone}}
        erase: update
        fields:
          email: {{category: contact, erase: hash}}
          phone: {{category: contact, erase: "null"}}
          name: {{category: name, erase: "null"}}
      addresses:
        primary_key: id
        references: {{user_id: users.id}}
        erase: delete
        fields:
          street: {{category: address, erase: redact}}
          city: {{category: address, erase: redact}}
      orders:
        primary_key: id
        references: {{user_id: users.id}}
        erase: update
        legal_hold: "tax records, 10 years (Art 17(3)(b))"
        retention_days: 3650
        retention_column: placed_on
        fields:
          shipping_name: {{category: name, erase: redact}}
          notes: {{category: free_text, erase: redact}}
      order_items:
        primary_key: id
        references: {{order_id: orders.id}}
        erase: delete
        legal_hold: "tax records, 10 years (Art 17(3)(b))"
        fields:
          gift_message: {{category: free_text, erase: redact}}
          sku: {{category: purchase, erase: keep}}
      returns:
        primary_key: id
        references: {{order_item_id: order_items.id}}
        erase: delete
        fields:
          reason: {{category: free_text, erase: redact}}
      support_tickets:
        primary_key: id
        identities: {{email: contact_email}}
        references: {{user_id: users.id}}
        erase: delete
        fields:
          body: {{category: free_text, erase: redact}}
      ticket_messages:
        primary_key: id
        references: {{ticket_id: support_tickets.id}}
        erase: delete
        fields:
          body: {{category: free_text, erase: redact}}
      newsletter:
        primary_key: id
        identities: {{email: email}}
        erase: delete
        fields:
          email: {{category: contact, erase: hash}}
      events:
        primary_key: id
        identities: {{ip: ip}}
        references: {{user_id: users.id}}
        erase: update
        fields:
          ip: {{category: online_identifier, erase: hash}}
          user_agent: {{category: online_identifier, erase: "null"}}
          user_id: {{category: online_identifier, erase: "null"}}
processing:
  - {{purpose: order fulfilment, lawful_basis: contract, categories: [contact, name, address, purchase],
     recipients: [carrier], retention: "10 years"}}
  - {{purpose: newsletter, lawful_basis: consent, categories: [contact], recipients: [],
     retention: "until withdrawn", subjects: [subscribers]}}
  - {{purpose: fraud prevention, lawful_basis: legitimate_interests, categories: [online_identifier],
     recipients: ["payment processor"], retention: "90 days", measures: "pseudonymised after 30 days"}}
"""


def create(engine: sa.Engine) -> None:
    meta.create_all(engine)
    with engine.begin() as conn:
        for table in meta.sorted_tables:
            conn.execute(table.insert(), SEED[table.name])


def dump(engine: sa.Engine) -> dict[str, dict[int, dict[str, Any]]]:
    """Every row of every table, by id, as the driver returns it."""
    with engine.connect() as conn:
        return {
            t.name: {r.id: dict(r._mapping) for r in conn.execute(sa.select(t))} for t in meta.sorted_tables
        }


def dangling_references(engine: sa.Engine) -> list[str]:
    """Foreign-key values that point at no row (independent of the database's own checks)."""
    out = []
    with engine.connect() as conn:
        for t in meta.sorted_tables:
            for fk in t.foreign_keys:
                child, parent = fk.parent, fk.column
                rows = conn.execute(
                    sa.select(t.c.id).where(child.isnot(None), ~sa.exists().where(parent == child))
                ).all()
                out += [f"{t.name}.{r.id}" for r in rows]
    return out
