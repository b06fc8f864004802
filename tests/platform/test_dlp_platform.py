"""DLP through the platform: text and files classified by a real worker; values never stored."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select

from secops.db.base import Base
from secops.db.models import DlpScan, SecurityEvent
from secops.db.session import get_engine, session_scope
from tests.factories import auth, make_key
from tests.platform.helpers import api_with_file_size_limit, files_under, platform, wait_scan

pytestmark = pytest.mark.integration
CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.org"
TEXT = f"Order 17: card {CARD}, contact {EMAIL}.\r\nThanks"
RAW = [CARD, CARD.replace(" ", ""), EMAIL, "jane.doe"]


def _all_values() -> str:
    """Every column of every row, as text: the database as a reader of it sees it."""
    out = []
    with get_engine().connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                out.append(repr(tuple(row)))
    return "\n".join(out)


def test_dlp_text_upload_and_scan_findings_without_values(sqlite_env, tmp_path, monkeypatch):
    with platform(sqlite_env, tmp_path, monkeypatch, {"SECOPS_DLP_ON_SCAN": "true"}) as url:
        client = httpx.Client(base_url=url, headers=auth(make_key("analyst")), timeout=30)
        submitted = client.post("/v1/dlp/scans", json={"text": TEXT, "name": "order.txt"})
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["status"] == "pending" and submitted.json()["source"] == "text"
        scan = wait_scan(client, f"/v1/dlp/scans/{submitted.json()['id']}")
        assert scan["status"] == "complete" and scan["classification"] == "restricted"
        by_type = {f["type"]: f for f in scan["findings"]}
        assert set(by_type) == {"credit_card", "email"}
        card = by_type["credit_card"]
        assert TEXT[card["start"]:card["end"]] == CARD and card["category"] == "PCI"
        assert card["preview"].endswith("1111") and card["preview"] != CARD
        assert "digest" not in card and card["part"] == "text"

        # a file upload, and a file accepted by the scanning job (SECOPS_DLP_ON_SCAN)
        upload = client.post("/v1/dlp/scans", files=[("file", ("notes.txt", TEXT.encode()))])
        assert upload.status_code == 202, upload.text
        uploaded = wait_scan(client, f"/v1/dlp/scans/{upload.json()['id']}")
        assert {f["type"] for f in uploaded["findings"]} == {"credit_card", "email"}
        assert {(f["type"], f["start"]) for f in uploaded["findings"]} == {
            (f["type"], f["start"]) for f in scan["findings"]}
        # other bytes than the upload above, whose file scan would answer from the cache
        file_scan = client.post("/v1/scans", files=[("file", ("export.csv", TEXT.encode() + b"\n"))])
        scanned = wait_scan(client, f"/v1/scans/{file_scan.json()['scans'][0]['id']}")
        assert scanned["verdict"] == "clean"
        stored = client.post("/v1/dlp/scans", json={"sha256": scanned["sha256"]})
        assert wait_scan(client, f"/v1/dlp/scans/{stored.json()['id']}")["finding_count"] == 2

        # redaction through the API: text in, redacted text out
        redacted = client.post("/v1/dlp/redact", json={"text": TEXT, "style": "type"})
        assert redacted.status_code == 200, redacted.text
        assert CARD not in redacted.json()["text"] and "[CREDIT_CARD]" in redacted.json()["text"]
        masked = client.post("/v1/dlp/redact", json={"text": TEXT, "style": "mask"}).json()["text"]
        assert EMAIL not in masked and "1111" in masked

        # bad input: clear problems
        for body in ({}, {"text": "x", "sha256": "0" * 64}, {"sha256": "nothex"}):
            assert client.post("/v1/dlp/scans", json=body).status_code == 422
        assert client.post("/v1/dlp/scans", json={"sha256": "a" * 64}).status_code == 404
        assert client.post("/v1/dlp/scans", content=b"{", headers={
            "Content-Type": "application/json"}).status_code == 422

        with session_scope() as session:
            on_scan = session.scalar(select(DlpScan).where(DlpScan.scan_id == scanned["id"]))
            assert on_scan is not None and on_scan.source == "scan" and on_scan.finding_count == 2
            events = session.scalars(select(SecurityEvent)
                                     .where(SecurityEvent.kind == "dlp_violation")).all()
            assert len(events) == 4 and {e.severity for e in events} == {"high"}
            assert {e.details["dlp_scan_id"] for e in events} >= {scan["id"], uploaded["id"]}

        # the values are nowhere: not in any column, not in the database files, not in logs,
        # and the submitted text was dropped from storage once classified
        values = _all_values()
        data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])
        raw_db = b"".join(p.read_bytes() for p in data_dir.glob("secops.db*"))
        logs = (tmp_path / "worker.log").read_text() + (tmp_path / "api.log").read_text()
        for value in RAW:
            assert value not in values and value.encode() not in raw_db and value not in logs
        assert files_under(data_dir / "dlp-text") == []


def test_dlp_pii_only_is_a_medium_violation(sqlite_env, tmp_path, monkeypatch):
    with platform(sqlite_env, tmp_path, monkeypatch) as url:
        client = httpx.Client(base_url=url, headers=auth(make_key()), timeout=30)
        plain = client.post("/v1/dlp/scans", json={"text": "nothing to see here"}).json()
        pii = client.post("/v1/dlp/scans", json={"text": f"write to {EMAIL}"}).json()
        assert wait_scan(client, f"/v1/dlp/scans/{plain['id']}")["findings"] == []
        assert wait_scan(client, f"/v1/dlp/scans/{pii['id']}")["categories"] == ["PII"]
        with session_scope() as session:
            events = session.scalars(select(SecurityEvent)
                                     .where(SecurityEvent.kind == "dlp_violation")).all()
            assert [(e.severity, e.details["dlp_scan_id"]) for e in events] == [("medium", pii["id"])]


def test_text_the_file_store_cannot_take_answers_503_and_keeps_nothing(sqlite_env, tmp_path):
    """A file store that cannot grow (see ``api_with_file_size_limit``): text to classify
    that cannot be stored is a server failure, and no staging file, stored text, scan row
    or job is left."""
    key = make_key()
    data_dir = Path(sqlite_env["SECOPS_DATA_DIR"])
    with api_with_file_size_limit(sqlite_env, tmp_path) as (url, _):
        with httpx.Client(base_url=url, headers=auth(key), timeout=60) as client:
            resp = client.post("/v1/dlp/scans", json={"text": TEXT + " x" * 450_000})
            assert resp.status_code == 503, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert files_under(data_dir / "tmp") == [] and files_under(data_dir / "dlp-text") == []
            with session_scope() as session:
                assert session.scalar(select(sa.func.count()).select_from(DlpScan)) == 0
            assert client.post("/v1/dlp/scans", json={"text": TEXT}).status_code == 202
