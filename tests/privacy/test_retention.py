"""Retention: expired rows and the rows that reference them, erased or counted (dry run)."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from click.testing import CliRunner

from secops.cli.privacy import privacy
from secops.privacy import load_map
from secops.privacy.connector import SqlConnector
from secops.privacy.retention import apply_retention
from tests.privacy import shop
from tests.privacy.conftest import Keys, Shop

# orders keep 3650 days from placed_on: on 2035-04-15 the cut-off is 2025-04-18, so order 100
# (2025-04-01) has expired and order 101 (2025-05-02) and 102 (2025-05-03) have not.
AS_OF = dt.datetime(2035, 4, 15, tzinfo=dt.UTC)
EXPECTED = [("returns", "delete", 1), ("order_items", "redact", 2), ("orders", "redact", 1)]


def _actions(outcome: dict) -> list[tuple[str, str, int]]:
    return [(a["table"], a["strategy"], a["rows"]) for a in outcome["actions"]]


def test_dry_run_counts_and_changes_nothing(shop_db: Shop, keys: Keys) -> None:
    before = shop.dump(shop_db.engine)
    result = CliRunner().invoke(
        privacy,
        [
            "retention",
            "--local",
            "--map",
            str(shop_db.map_path),
            "--dry-run",
            "--as-of",
            "2035-04-15",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and [s["status"] for s in doc["stores"]] == ["dry_run"]
    assert _actions(doc["stores"][0]) == EXPECTED
    assert shop.dump(shop_db.engine) == before
    early = CliRunner().invoke(
        privacy,
        [
            "retention",
            "--local",
            "--map",
            str(shop_db.map_path),
            "--dry-run",
            "--as-of",
            "2026-12-01",
            "--json",
        ],
    )
    assert json.loads(early.stdout)["stores"][0]["actions"] == []
    refused = CliRunner().invoke(
        privacy, ["retention", "--local", "--map", str(shop_db.map_path), "--as-of", "2035-04-15"]
    )
    assert refused.exit_code == 2 and "--as-of previews only" in refused.output


def test_retention_erases_expired_rows_and_their_children(shop_db: Shop, keys: Keys) -> None:
    before = shop.dump(shop_db.engine)
    dm = load_map(shop_db.map_path)
    connector = SqlConnector(dm)
    outcomes = apply_retention(dm, connector, key=keys.hmac, now=AS_OF)
    connector.close()
    assert [o.status for o in outcomes] == ["committed"]
    assert _actions(outcomes[0].to_dict()) == EXPECTED
    expected = copy.deepcopy(before)
    del expected["returns"][5000]  # child of item 1001 of the expired order: deleted
    expected["order_items"][1000]["gift_message"] = "[REDACTED]"  # legal hold: kept, fields erased
    expected["orders"][100].update(shipping_name="[REDACTED]", notes="[REDACTED]")
    assert shop.dump(shop_db.engine) == expected
    assert shop.dangling_references(shop_db.engine) == []


@pytest.mark.parametrize("platform_env", ["sqlite"], indirect=True)
def test_the_retention_job_runs_the_map_of_the_platform(privacy_platform) -> None:
    from sqlalchemy import select

    from secops.config import get_settings
    from secops.db.models import AuditEntry
    from secops.db.session import session_scope
    from secops.services import privacy_jobs

    with session_scope() as s:
        result = privacy_jobs.run_retention(
            session=s, settings=get_settings(), dry_run=True, job_id="job-1", now=AS_OF
        )
    assert result["dry_run"] is True
    assert [(o["store"], o["status"]) for o in result["stores"]] == [("shop", "dry_run")]
    assert _actions(result["stores"][0]) == EXPECTED
    with session_scope() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "privacy.retention")).one()
        assert (entry.actor, entry.details) == ("job:job-1", {"dry_run": True, "rows": 4, "failed": []})
