"""ACME renewal end to end: beat keeps the default daily schedule and fires a schedule,
a real worker renews through pebble (DNS-01 hook), the API shows the deployment."""

from __future__ import annotations

import json

import httpx
import pytest

from secops.certs import ca
from tests.certs.pebble import free_port, pebble
from tests.certs.pki import ec_key
from tests.factories import auth, make_key
from tests.platform.helpers import platform
from tests.processes import start_beat, wait_for

pytestmark = pytest.mark.integration


def test_beat_worker_and_api_renew_through_acme(sqlite_env, tmp_path, monkeypatch) -> None:
    live = tmp_path / "live"
    live.mkdir()
    hook_log = tmp_path / "hook.log"
    hook = live / "dns-hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$@" >> {hook_log}\n')
    hook.chmod(0o755)
    account = tmp_path / "account.key"
    account.write_bytes(ca.key_pem(ec_key()))
    with pebble(tmp_path / "pebble", always_valid=True) as peb:
        extra = {"SECOPS_CERTS_ACME_DIRECTORY_URL": peb.directory,
                 "SECOPS_CERTS_ACME_CA_BUNDLE": str(peb.root),
                 "SECOPS_CERTS_ACME_ACCOUNT_KEY_FILE": str(account),
                 "SECOPS_CERTS_ACME_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
                 "SECOPS_CERTS_ALLOWED_DIRS": json.dumps([str(live)]),
                 "SECOPS_CERTS_RELOAD_COMMANDS": json.dumps([str(hook)]),
                 "SECOPS_CERTS_RENEW_CRON": "17 3 * * *"}
        with platform(sqlite_env, tmp_path, monkeypatch, extra) as url:
            beat = start_beat({**sqlite_env, **extra}, tmp_path / "beat.log")
            try:
                admin = httpx.Client(base_url=url, headers=auth(make_key("admin")), timeout=30)

                def default_schedule() -> dict | None:
                    rows = admin.get("/v1/schedules").json()
                    return next((s for s in rows if s["kind"] == "certs.renew"), None)

                made = wait_for(default_schedule, 30, "the default certs.renew schedule")
                assert (made["name"], made["cron"], made["enabled"]) == ("certs-renew (default)",
                                                                         "17 3 * * *", True)
                created = admin.post("/v1/certs/ca/deployments", json={
                    "name": "api", "common_name": "api.example.org", "sans": ["api.example.org"],
                    "cert_path": str(live / "api.pem"), "key_path": str(live / "api.key"),
                    "issuer": "acme", "acme_challenge": "dns-01", "acme_dns_hook": [str(hook)]})
                assert created.status_code == 201, created.text
                deployment = created.json()["id"]
                now = admin.post("/v1/schedules", json={"name": "renew-now", "kind": "certs.renew",
                                                        "interval_seconds": 1})
                assert now.status_code == 201, now.text

                def deployed() -> dict | None:
                    row = admin.get(f"/v1/certs/ca/deployments/{deployment}").json()
                    return row if row["status"] == "deployed" else None

                row = wait_for(deployed, 60, "the ACME deployment")
                admin.patch(f"/v1/schedules/{now.json()['id']}", json={"enabled": False})
                kinds = [s["kind"] for s in admin.get("/v1/schedules").json()]
                assert kinds.count("certs.renew") == 2  # the default one was not made twice
            finally:
                beat.stop()
    assert row["serial"] and row["not_after"]
    assert [line.split()[:2] for line in hook_log.read_text().splitlines()][:2] == [
        ["add", "_acme-challenge.api.example.org"], ["remove", "_acme-challenge.api.example.org"]]
    assert "BEGIN CERTIFICATE" in (live / "api.pem").read_text()
    # later firings found it not due: one issuance
    assert peb.log.read_text().count("Issued certificate serial") == 1
