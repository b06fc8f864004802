"""Rectification (Art 16) of linked rows, and the recipients to notify (Art 19)."""

from __future__ import annotations

import copy

import pytest

from secops.privacy import PrivacyError, load_map
from secops.privacy.connector import SqlConnector
from secops.privacy.rectify import rectify_subject
from tests.privacy import shop
from tests.privacy.conftest import Shop


def test_rectify_updates_every_linked_row_and_names_the_recipients(shop_db: Shop) -> None:
    before = shop.dump(shop_db.engine)
    dm = load_map(shop_db.map_path)
    connector = SqlConnector(dm)
    changes, recipients = rectify_subject(
        dm,
        {"email": shop.ALICE_EMAIL},
        {"shop.users.name": "Alice P. Liddell", "shop.orders.shipping_name": "Alice P. Liddell"},
        connector,
    )
    connector.close()
    assert [c.to_dict() for c in changes] == [
        {"store": "shop", "table": "users", "column": "name", "rows": 1},
        {"store": "shop", "table": "orders", "column": "shipping_name", "rows": 2},
    ]
    assert recipients == ["carrier"]  # only "order fulfilment" processes the name category
    expected = copy.deepcopy(before)
    expected["users"][1]["name"] = "Alice P. Liddell"
    for pk in (100, 101):
        expected["orders"][pk]["shipping_name"] = "Alice P. Liddell"
    assert shop.dump(shop_db.engine) == expected


def test_rectify_refuses_fields_outside_the_map(shop_db: Shop) -> None:
    dm = load_map(shop_db.map_path)
    for updates, message in [
        ({"shop.users.created_at": "x"}, "is not a personal field of the map"),
        ({"users.name": "x"}, "must read store.table.column"),
        ({}, "a rectification names at least one field"),
    ]:
        with pytest.raises(PrivacyError, match=message):
            rectify_subject(dm, {"email": shop.ALICE_EMAIL}, updates, SqlConnector(dm))
