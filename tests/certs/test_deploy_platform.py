"""Managed certificates end to end: API, a real worker, the internal CA, deployment with
rollback, pins, audit."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest
from cryptography import x509

from secops.certs import ca
from secops.certs.analysis import spki_sha256
from secops.certs.tls import Endpoint, TlsProber
from tests.certs.servers import FileTlsServer
from tests.factories import auth, make_key
from tests.platform.helpers import platform, wait_job

pytestmark = pytest.mark.integration
TRUE, FALSE = shutil.which("true"), shutil.which("false")


def test_managed_certificate_renewal_deployment_and_rollback(sqlite_env, tmp_path, monkeypatch) -> None:
    authority = ca.create_authority("Deploy", now=datetime.now(UTC))
    (tmp_path / "chain.pem").write_bytes(authority.chain_pem())
    (tmp_path / "ca.key").write_bytes(ca.key_pem(authority.intermediate_key))
    live = tmp_path / "live"
    live.mkdir()
    extra = {"SECOPS_CERTS_CA_CHAIN_FILE": str(tmp_path / "chain.pem"),
             "SECOPS_CERTS_CA_KEY_FILE": str(tmp_path / "ca.key"),
             "SECOPS_CERTS_ALLOWED_DIRS": f'["{live}"]',
             "SECOPS_CERTS_RELOAD_COMMANDS": f'["{TRUE}", "{FALSE}"]'}
    cert_path, key_path, chain_path = live / "web.pem", live / "web.key", live / "web-chain.pem"
    with FileTlsServer(cert_path, key_path) as server, \
            platform(sqlite_env, tmp_path, monkeypatch, extra) as url:
        admin = httpx.Client(base_url=url, headers=auth(make_key("admin")), timeout=30)
        target = admin.post("/v1/certs/endpoints", json={"host": "127.0.0.1", "port": server.port}).json()
        body = {"name": "web", "common_name": "web", "sans": ["127.0.0.1"], "target_id": target["id"],
                "cert_path": str(cert_path), "key_path": str(key_path), "chain_path": str(chain_path),
                "reload_argv": [TRUE]}
        for bad in ({"reload_argv": ["/bin/sh", "-c", "id"]}, {"cert_path": "/etc/web.pem"}, {"sans": []}):
            refused = admin.post("/v1/certs/ca/deployments", json=body | bad)
            assert refused.status_code == 422, (bad, refused.text)
        analyst = httpx.Client(base_url=url, headers=auth(make_key("analyst")), timeout=30)
        assert analyst.post("/v1/certs/ca/deployments", json=body).status_code == 403
        created = admin.post("/v1/certs/ca/deployments", json=body)
        assert created.status_code == 201, created.text
        web = created.json()["id"]
        broken = admin.post("/v1/certs/ca/deployments", json=body | {
            "name": "broken", "target_id": None, "reload_argv": [FALSE], "cert_path": str(live / "b.pem"),
            "key_path": str(live / "b.key"), "chain_path": None}).json()["id"]

        job = wait_job(admin, admin.post("/v1/certs/ca/renewals", json={}).json()["id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["outcomes"] == {web: "deployed", broken: "rolled_back"}
        assert job["result"]["errors"] == {broken: "the reload hook exited with status 1; the reload hook "
                                                   "also failed after the rollback"}
        assert not (live / "b.pem").exists() and not (live / "b.key").exists()

        state = admin.get(f"/v1/certs/ca/deployments/{web}").json()
        assert state["status"] == "deployed"
        assert oct(key_path.stat().st_mode & 0o777) == "0o600"
        served = TlsProber(timeout=2, probe_weak=False).handshake(Endpoint("127.0.0.1", server.port))
        assert hashlib.sha256(served.chain[0]).hexdigest() == state["fingerprint"]
        assert chain_path.read_bytes() == authority.chain_pem()

        # not due again yet; the rolled-back certificate is revoked on the CRL
        again = wait_job(admin, admin.post("/v1/certs/ca/renewals",
                                           json={"deployment_ids": [web]}).json()["id"])
        assert again["result"]["outcomes"] == {web: "not_due"}
        env = {**os.environ, **sqlite_env, **extra, "SECOPS_API_URL": url,
               "SECOPS_API_KEY": make_key("admin")}
        cli = subprocess.run([sys.executable, "-m", "secops.cli", "certs", "ca", "renew", "--deployment",
                              web], env=env, capture_output=True, text=True, timeout=60)
        assert (cli.returncode, cli.stdout.strip()) == (0, f"{web}  not_due"), cli.stderr
        crl = x509.load_der_x509_crl(httpx.get(f"{url}/v1/certs/ca/crl").content)
        issued = {r["requested_by"]: r for r in admin.get("/v1/certs/ca/certificates").json()}
        assert [format(r.serial_number, "x") for r in crl] == [issued[f"deployment:{broken}"]["serial"]]

        # pinned to the current key only: a forced renewal with a new key is refused
        current_pin = spki_sha256(x509.load_pem_x509_certificate(cert_path.read_bytes()))
        admin.patch(f"/v1/certs/endpoints/{target['id']}", json={"pins": [current_pin]})
        before = cert_path.read_bytes()
        pinned = wait_job(admin, admin.post("/v1/certs/ca/renewals",
                                            json={"deployment_ids": [web], "force": True}).json()["id"])
        assert pinned["result"]["outcomes"] == {web: "refused"}
        assert "matches none of its pins" in pinned["result"]["errors"][web]
        assert cert_path.read_bytes() == before

        # the CLI changes a deployment through PATCH: a refused path is exit 2 and changes nothing
        def update(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "secops.cli", "certs", "ca", "update", broken,
                                   *args], env=env, capture_output=True, text=True, timeout=60)

        refused_cli = update("--cert", "/etc/broken.pem", "--disable")
        assert refused_cli.returncode == 2 and "SECOPS_CERTS_ALLOWED_DIRS" in refused_cli.stderr
        assert admin.get(f"/v1/certs/ca/deployments/{broken}").json()["enabled"] is True
        changed = update("--disable", "--reload", TRUE)
        assert (changed.returncode, changed.stdout.strip()) == (
            0, f"deployment {broken} (broken): disabled, status rolled_back"), changed.stderr
        assert admin.get(f"/v1/certs/ca/deployments/{broken}").json()["reload_argv"] == [TRUE]
        skipped = wait_job(admin, admin.post("/v1/certs/ca/renewals",
                                             json={"deployment_ids": [broken], "force": True}).json()["id"])
        assert skipped["result"]["outcomes"] == {broken: "disabled"}

        actions = [e["action"] for e in admin.get("/v1/audit", params={"limit": 200}).json()["items"]]
        for action in ("certs.deployment.create", "certs.deployment.update", "certs.issue", "certs.deploy",
                       "certs.rollback", "certs.renew.refused"):
            assert action in actions, action
        events = {e["kind"] for e in admin.get("/v1/security/events").json()}
        assert {"cert.issued", "cert.deployed", "cert.rollback", "cert.renewal_refused",
                "cert.deployment_changed"} <= events
    assert os.path.exists(live / "web.pem.previous") is False  # one deployment: nothing to keep
