"""The inventory end to end: API, a real worker process, the CLI, alerts and metrics."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from tests.certs.pki import Pki, now
from tests.certs.servers import PlaintextServer, TlsServer
from tests.factories import auth, make_key
from tests.platform.helpers import platform, wait_job

pytestmark = pytest.mark.integration


def test_inventory_through_api_worker_and_cli(sqlite_env, tmp_path, monkeypatch, pki: Pki,
                                             root_file: str) -> None:
    allowed = tmp_path / "certfiles"
    allowed.mkdir()
    (allowed / "bundle.pem").write_bytes(pki.leaf("files.example").pem + pki.intermediate.pem)
    leaf = pki.leaf(not_after=now() + timedelta(days=5))
    extra = {"SECOPS_CERTS_CA_FILE": root_file, "SECOPS_CERTS_ALLOWED_DIRS": f'["{allowed}"]',
             "SECOPS_CERTS_TIMEOUT": "1"}
    with TlsServer(leaf, (pki.intermediate,)) as server, PlaintextServer() as plain, \
            platform(sqlite_env, tmp_path, monkeypatch, extra) as url:
        analyst = httpx.Client(base_url=url, headers=auth(make_key("analyst")), timeout=30)
        auditor = httpx.Client(base_url=url, headers=auth(make_key("auditor")), timeout=30)
        added = analyst.post("/v1/certs/endpoints", json={"host": "127.0.0.1", "port": server.port,
                                                          "owner": "web", "tags": ["prod"]})
        assert added.status_code == 201, added.text
        endpoint = added.json()
        assert (endpoint["key"], endpoint["owner"], endpoint["tags"]) == (
            f"127.0.0.1:{server.port}", "web", ["prod"])
        assert analyst.post("/v1/certs/endpoints", json={"host": "127.0.0.1",
                                                         "port": plain.port}).status_code == 201
        assert analyst.post("/v1/certs/files", json={"path": str(allowed / "bundle.pem")}).status_code == 201
        # bad input and roles: problem+json answers
        dup = analyst.post("/v1/certs/endpoints", json={"host": "127.0.0.1", "port": server.port})
        assert dup.status_code == 409 and dup.headers["content-type"] == "application/problem+json"
        outside = analyst.post("/v1/certs/files", json={"path": "/etc/ssl/certs"})
        assert outside.status_code == 422 and "SECOPS_CERTS_ALLOWED_DIRS" in outside.json()["detail"]
        assert analyst.post("/v1/certs/endpoints", json={"host": "x", "port": 0}).status_code == 422
        assert analyst.post("/v1/certs/endpoints", json={"host": "127.0.0.1", "port": 1,
                                                         "pins": ["short"]}).status_code == 422
        assert auditor.post("/v1/certs/endpoints", json={"host": "a.example"}).status_code == 403
        assert auditor.get("/v1/certs/endpoints").json()["total"] == 2

        job = analyst.post("/v1/certs/scans", json={})
        assert job.status_code == 202, job.text
        done = wait_job(analyst, job.json()["id"])
        assert done["status"] == "succeeded", done
        assert done["result"] == {"targets": 3, "certificates": 3, "errors": 1, "findings": 2,
                                  "changes": 3, "events": 5}

        body = analyst.get(f"/v1/certs/endpoints/{endpoint['id']}").json()
        [cert] = body["certificates"]
        assert cert["fingerprint"] == hashlib.sha256(leaf.der).hexdigest()
        assert cert["spki_sha256"] == leaf.pin and cert["change"] == "first_seen"
        assert [(f["id"], f["severity"]) for f in body["last_findings"]] == [("cert.expiring", "high")]
        alerts = analyst.get("/v1/alerts").json()["items"]
        assert sorted((a["rule"], a["subject"].split("|")[1]) for a in alerts) == [
            ("certs.high", "cert.expiring"), ("certs.high", "tls.unreachable")]
        listed = analyst.get("/v1/certs/certificates").json()
        assert listed["total"] == 3 and listed["items"][0]["target"] == endpoint["key"]

        # the CLI against the same API: a second scan raises nothing new
        env = {**os.environ, **sqlite_env, **extra, "SECOPS_API_URL": url,
               "SECOPS_API_KEY": make_key("analyst")}
        out = subprocess.run([sys.executable, "-m", "secops.cli", "certs", "scan", "--wait"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert '"events": 0' in out.stdout
        listing = subprocess.run([sys.executable, "-m", "secops.cli", "certs", "endpoints", "list",
                                  "--tag", "prod"], env=env, capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0 and endpoint["id"] in listing.stdout
        assert len(listing.stdout.splitlines()) == 1
        assert len(analyst.get("/v1/alerts").json()["items"]) == 2

        scrape = httpx.get(f"{url}/metrics", headers=auth(make_key("admin"))).text
        assert f'secops_cert_days_left{{target="{endpoint["key"]}"}}' in scrape
        assert f'secops_cert_not_after_seconds{{target="file:{allowed / "bundle.pem"}#1"}}' in scrape

        removed = analyst.delete(f"/v1/certs/endpoints/{endpoint['id']}")
        assert removed.status_code == 204
        assert analyst.get(f"/v1/certs/endpoints/{endpoint['id']}").status_code == 404
