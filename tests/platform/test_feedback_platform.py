"""Feedback and policy actions through the platform (real API and worker, SQLite and
PostgreSQL): suppressions of DLP findings and scan verdicts applied to later scans,
expired and revoked ones not; baselines exported sealed and imported; ``block``
quarantines the content; DLP uploads are scanned for malware."""

from __future__ import annotations

import json
import os
import secrets
import string
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from secops.db.feedback_models import Suppression
from secops.db.models import Alert, AuditEntry, DlpFinding, ScanResult, SecurityEvent
from secops.db.session import session_scope
from tests.factories import auth, make_key
from tests.platform.helpers import platform, wait_job, wait_scan
from tests.scanning.corpus import EICAR, minimal_pe

pytestmark = pytest.mark.integration
JANE, JOHN = "jane.doe@example.org", "john.roe@example.net"


def _dlp(client: httpx.Client, text: str, name: str = "mail.txt") -> dict:
    resp = client.post("/v1/dlp/scans", json={"text": text, "name": name})
    assert resp.status_code == 202, resp.text
    return wait_scan(client, f"/v1/dlp/scans/{resp.json()['id']}")


def _emails(scan: dict) -> set[tuple[str, int]]:
    return {(f["type"], f["start"]) for f in scan["findings"]}


def _upload_scan(client: httpx.Client, name: str, data: bytes) -> dict:
    resp = client.post("/v1/scans", files=[("file", (name, data))])
    assert resp.status_code == 202, resp.text
    return wait_scan(client, f"/v1/scans/{resp.json()['scans'][0]['id']}")


def test_suppressions_baseline_block_and_malware_in_dlp_uploads(platform_env, tmp_path, monkeypatch):
    with platform(platform_env, tmp_path, monkeypatch) as url:
        analyst, admin, auditor = make_key("analyst", name="analyst"), make_key("admin"), \
            make_key("auditor", name="auditor")
        client = httpx.Client(base_url=url, headers=auth(analyst), timeout=30)
        admin_client = httpx.Client(base_url=url, headers=auth(admin), timeout=30)
        auditor_client = httpx.Client(base_url=url, headers=auth(auditor), timeout=30)

        # -- a DLP finding marked not sensitive: that value goes, the same detector stays
        first = _dlp(client, f"write to {JANE} or {JOHN}")
        jane = next(f for f in first["findings"] if first_text_at(f, f"write to {JANE} or {JOHN}") == JANE)
        made = client.post("/v1/suppressions", json={"dlp_finding_id": jane["id"],
                                                     "reason": "team test address"})
        assert made.status_code == 201, made.text
        row = made.json()
        assert row["by_value"] is True and row["family"] == "dlp" and row["detector"] == "email"
        assert "digest" not in json.dumps(row) and row["active"] is True
        later_text = f"cc {JOHN}; also {JANE}"
        later = _dlp(client, later_text)
        assert _emails(later) == {("email", later_text.index(JOHN))}
        assert later["finding_count"] == 1
        # nobody else may mark findings; an auditor reads them
        assert auditor_client.post("/v1/suppressions", json={
            "dlp_finding_id": jane["id"], "reason": "x" * 5}).status_code == 403
        assert [r["id"] for r in auditor_client.get("/v1/suppressions").json()] == [row["id"]]

        # -- a detector suppressed on matching file names; an expired one no longer applies
        rule = client.post("/v1/suppressions", json={
            "detector": "email", "path_pattern": "*.fixture.txt", "reason": "fixtures",
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}).json()
        assert _dlp(client, f"to {JOHN}", name="a.fixture.txt")["findings"] == []
        assert _emails(_dlp(client, f"to {JOHN}", name="real.txt")) == {("email", 3)}
        with session_scope() as session:  # a day later
            session.execute(update(Suppression).where(Suppression.id == rule["id"])
                            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert _emails(_dlp(client, f"to {JOHN}", name="a.fixture.txt")) == {("email", 3)}
        assert [r["id"] for r in client.get("/v1/suppressions").json()] == [row["id"]]
        assert {r["id"] for r in client.get("/v1/suppressions", params={"all": "true"}).json()} \
            == {row["id"], rule["id"]}
        # bad input: clear problems
        for body in ({"reason": "no subject"}, {"detector": "email", "reason": "no path"},
                     {"dlp_finding_id": jane["id"], "reason": "past",
                      "expires_at": "2020-01-01T00:00:00+00:00"},
                     {"dlp_finding_id": jane["id"], "scan_id": "x", "reason": "two"}):
            assert client.post("/v1/suppressions", json=body).status_code == 422, body
        assert client.post("/v1/suppressions", json={"dlp_finding_id": 2**31 - 1,
                                                     "reason": "gone"}).status_code == 404

        # -- a scan verdict marked a false positive (by sha256 + rule), through the CLI
        exe = minimal_pe()
        disguised = _upload_scan(client, "invoice.pdf", exe)
        assert disguised["verdict"] == "suspicious"
        assert "type.disguised_executable" in {f["rule_id"] for f in disguised["findings"]}
        cli = subprocess.run(
            [sys.executable, "-m", "secops.cli", "suppressions", "scan", disguised["id"],
             "--rule", "type.disguised_executable", "--reason", "vendor installer", "--json"],
            env={**os.environ, "SECOPS_API_URL": url, "SECOPS_API_KEY": analyst},
            capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        scan_rule = json.loads(cli.stdout)
        assert (scan_rule["family"], scan_rule["sha256"]) == ("scan", disguised["sha256"])
        again = _upload_scan(client, "invoice.pdf", exe)  # not from the cache: scanned again
        assert again["cached"] is False and again["verdict"] == "clean"
        assert "type.disguised_executable" not in {f["rule_id"] for f in again["findings"]}
        other = _upload_scan(client, "invoice.pdf", exe + b"\0")  # other content: not suppressed
        assert other["verdict"] == "suspicious"

        # -- export (admin): value digests sealed, equal values unequal in two exports
        assert client.get("/v1/suppressions/baseline").status_code == 403
        exported = admin_client.get("/v1/suppressions/baseline")
        assert exported.status_code == 200
        baseline = exported.json()
        with session_scope() as session:
            digests = set(session.scalars(select(DlpFinding.digest)))
        assert digests and not any(d in exported.text for d in digests if d)
        entries = {(e["family"], e.get("detector")): e for e in baseline["entries"]}
        assert set(entries) == {("dlp", "email"), ("scan", "type.disguised_executable")}
        assert "digest" not in entries["dlp", "email"] and entries["dlp", "email"]["sealed"]
        second = admin_client.get("/v1/suppressions/baseline").json()
        assert [e.get("sealed") for e in second["entries"]] != [e.get("sealed") for e in baseline["entries"]]

        # -- revoke: the value is reported again; then import the baseline: suppressed again
        for r in (row, scan_rule):
            revoked = client.delete(f"/v1/suppressions/{r['id']}")
            assert revoked.status_code == 200 and revoked.json()["active"] is False
        assert client.delete(f"/v1/suppressions/{row['id']}").status_code == 409
        assert _emails(_dlp(client, later_text)) == {("email", later_text.index(JOHN)),
                                                     ("email", later_text.index(JANE))}
        assert client.post("/v1/suppressions/baseline", json=baseline).status_code == 403
        assert admin_client.post("/v1/suppressions/baseline",
                                 json={"format": "secops-baseline"}).status_code == 422
        tampered = json.loads(json.dumps(baseline))
        tampered["entries"][0]["reason"] = ""
        assert admin_client.post("/v1/suppressions/baseline", json=tampered).status_code == 422
        imported = admin_client.post("/v1/suppressions/baseline", json=baseline)
        assert imported.json() == {"added": 2, "existing": 0, "expired": 0, "unusable": 0}
        assert _emails(_dlp(client, later_text)) == {("email", later_text.index(JOHN))}
        assert admin_client.post("/v1/suppressions/baseline", json=baseline).json()["existing"] == 2

        # -- block: a SECRET finding quarantines the uploaded file; the submitter is told
        token = "ghp_" + "".join(secrets.choice(string.ascii_letters + string.digits)
                                 for _ in range(36))
        blocked_resp = client.post("/v1/dlp/scans", files=[(
            "file", ("deploy.env", f"GITHUB_TOKEN={token}\n".encode()))])
        assert blocked_resp.status_code == 202, blocked_resp.text
        blocked = wait_scan(client, f"/v1/dlp/scans/{blocked_resp.json()['id']}")
        assert blocked["status"] == "complete" and blocked["blocked"] is True
        assert blocked["file_state"] == "quarantined" and blocked["verdict"] == "clean"
        assert wait_job(client, blocked["job_id"])["result"]["quarantined"] is True
        data_dir = Path(platform_env["SECOPS_DATA_DIR"])
        sha = blocked["sha256"]
        assert not (data_dir / "blobs" / sha[:2] / sha).exists()
        assert (data_dir / "quarantine" / sha[:2] / sha).is_file()
        assert sha in {f["sha256"] for f in admin_client.get("/v1/quarantine").json()}

        # -- an EICAR uploaded for DLP: caught by the malware scan, quarantined, not classified
        eicar_resp = client.post("/v1/dlp/scans", files=[("file", ("notes.txt", EICAR))])
        assert eicar_resp.status_code == 202
        caught = wait_scan(client, f"/v1/dlp/scans/{eicar_resp.json()['id']}")
        assert caught["status"] == "failed" and "malicious" in caught["error"]
        assert caught["verdict"] == "malicious" and caught["file_state"] == "quarantined"
        assert caught["findings"] == []
        file_scan = client.get(f"/v1/scans/{caught['scan_id']}").json()
        assert "yara.SECOPS_EICAR_Test_File" in {f["rule_id"] for f in file_scan["findings"]}

        with session_scope() as session:
            actions = [a for (a,) in session.execute(
                select(AuditEntry.action).where(AuditEntry.action.like("suppression%")))]
            assert sorted(actions) == sorted(["suppression.created"] * 3 + ["suppression.revoked"] * 2
                                             + ["suppressions.export"] * 2
                                             + ["suppression.imported"] * 2)
            kinds = [k for (k,) in session.execute(select(SecurityEvent.kind))]
            assert kinds.count("suppression.created") == 3 and kinds.count("suppression.revoked") == 2
            assert "scan.malicious" in kinds
            malicious = session.scalar(select(ScanResult).where(ScanResult.id == caught["scan_id"]))
            assert malicious is not None and malicious.source == "upload"
            assert session.scalar(select(Alert).where(Alert.rule == "scan.malicious_upload",
                                                      Alert.subject == caught["scan_id"]))


def first_text_at(finding: dict, text: str) -> str:
    return text[finding["start"]:finding["end"]]
