"""ACME renewal with real peers: a DNS-01 provider plugin (a distribution installed with
pip) publishing the TXT record to pebble-challtestsrv, the DNS server pebble validates
against; HTTP-01 by files in a webroot that python's http.server serves; a real 429 with
Retry-After from a proxy in front of pebble; deployments changed through the API."""

from __future__ import annotations

import base64
import importlib
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from secops.api.app import create_app
from secops.certs import ca, dns
from secops.certs.tls import TlsProber
from secops.cli import cli
from secops.config import get_settings
from secops.db.base import utcnow
from secops.db.models import AuditEntry, CertAcmeOrder, CertDeployment, SecurityEvent
from secops.db.session import session_scope
from secops.services import cert_deploy
from tests.certs.acme_peers import challtestsrv, rate_limiting_proxy, webroot_server
from tests.certs.pebble import pebble
from tests.certs.pki import ec_key
from tests.factories import auth, make_key

PLUGIN = Path(__file__).parent / "dns_plugin"
PROBLEM = "application/problem+json"


def _install_plugin(site: Path, monkeypatch) -> None:
    """pip builds and installs the plugin distribution; SecOps finds it by entry point."""
    source = site.parent / "dns_plugin"  # a copy: the build leaves files in its source tree
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(source)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()


def _rfc3339(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ari_id(cert_path: Path) -> str:
    """RFC 9773's certID, written out here from the certificate's fields."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    return ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in (aki, serial))


def _renew(deployment_id: str, *, force: bool = False):
    with session_scope() as session:
        return cert_deploy.renew(session=session, settings=get_settings(), deployment_id=deployment_id,
                                 force=force, actor="tests", checkpoint=session.commit,
                                 prober=TlsProber(timeout=2, probe_weak=False))


def test_dns_plugin_webroot_retry_after_and_patch(sqlite_env, tmp_path, monkeypatch) -> None:
    assert "challtestsrv" not in dns.available()
    _install_plugin(tmp_path / "site", monkeypatch)
    assert dns.available() == ["challtestsrv", "hook"]
    live, webroot = tmp_path / "live", tmp_path / "www"
    live.mkdir()
    webroot.mkdir()
    account = tmp_path / "account.key"
    account.write_bytes(ca.key_pem(ec_key()))
    with challtestsrv(tmp_path / "challtestsrv.log") as chall, \
            pebble(tmp_path / "pebble", dns_server=chall.dns) as peb, \
            rate_limiting_proxy(peb, retry_after=120) as proxy, \
            webroot_server(webroot, peb.http_port) as web:
        for name, value in {"SECOPS_CERTS_ACME_DIRECTORY_URL": proxy.directory,
                            "SECOPS_CERTS_ACME_CA_BUNDLE": str(peb.root),
                            "SECOPS_CERTS_ACME_ACCOUNT_KEY_FILE": str(account),
                            "SECOPS_CERTS_ALLOWED_DIRS": f'["{live}", "{webroot}"]',
                            "SECOPS_CERTS_RELOAD_COMMANDS": "[]"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("SECOPS_CERTS_DNS_CHALLTESTSRV_TOKEN", raising=False)
        get_settings.cache_clear()
        api = TestClient(create_app(), raise_server_exceptions=False)
        admin = auth(make_key("admin"))
        base = {"cert_path": str(live / "api.pem"), "key_path": str(live / "api.key"),
                "issuer": "acme", "acme_challenge": "dns-01"}

        # bad provider choices are problems, and nothing is written
        for bad, words in [({"acme_dns_provider": "nosuch"}, "no DNS provider named 'nosuch'"),
                           ({"acme_dns_provider": "challtestsrv",
                             "acme_dns_settings": {"url": chall.management, "token": "x"}},
                            "token is a secret of the DNS provider challtestsrv"),
                           ({"acme_dns_provider": "challtestsrv", "acme_dns_settings": {}},
                            "needs the setting(s) url")]:
            answer = api.post("/v1/certs/ca/deployments", headers=admin, json={
                "name": "bad", "common_name": "api.example.test", "sans": ["api.example.test"],
                **base, **bad})
            assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text
            assert words in answer.json()["detail"]
        assert api.get("/v1/certs/ca/deployments", headers=admin).json() == []

        made = api.post("/v1/certs/ca/deployments", headers=admin, json={
            "name": "api", "common_name": "api.example.test", "sans": ["api.example.test"], **base,
            "acme_dns_provider": "challtestsrv", "acme_dns_settings": {"url": chall.management}})
        assert made.status_code == 201, made.text
        dns_id = made.json()["id"]
        assert (made.json()["acme_dns_provider"], made.json()["acme_dns_settings"]) == (
            "challtestsrv", {"url": chall.management})
        made = api.post("/v1/certs/ca/deployments", headers=admin, json={
            "name": "www", "common_name": "www.example.test", "sans": ["www.example.test"],
            "cert_path": str(live / "www.pem"), "key_path": str(live / "www.key"), "issuer": "acme",
            "acme_challenge": "http-01", "acme_webroot": str(webroot)})
        assert made.status_code == 201, made.text
        web_id = made.json()["id"]

        # the provider's secret is missing: a clear failure before anything is ordered
        failed = _renew(dns_id)
        assert failed.status == "failed"
        assert "SECOPS_CERTS_DNS_CHALLTESTSRV_TOKEN" in failed.detail
        assert proxy.log.count("POST", "/order-plz") == 0

        # the secret through the secret reader; the proxy's 429 holds the renewal back
        monkeypatch.setenv("SECOPS_CERTS_DNS_CHALLTESTSRV_TOKEN", "challtestsrv-token-for-tests")
        get_settings.cache_clear()
        limited = _renew(dns_id)
        assert limited.status == "rate_limited" and "too many new orders recently" in limited.detail
        with session_scope() as session:
            wait = session.get(CertDeployment, dns_id).next_attempt_at - utcnow()
        assert timedelta(seconds=110) <= wait <= timedelta(seconds=120)
        held = _renew(dns_id, force=True)
        assert held.status == "rate_limited" and held.detail.startswith("not before ")
        assert proxy.log.count("POST", "/order-plz") == 1
        with session_scope() as session:
            session.get(CertDeployment, dns_id).next_attempt_at = utcnow() - timedelta(seconds=1)

        # DNS-01 validated for real: pebble asked challtestsrv for the TXT record
        assert _renew(dns_id).status == "deployed"
        assert proxy.log.count("POST", "/order-plz") == 2
        leaf = x509.load_pem_x509_certificate((live / "api.pem").read_bytes())
        assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName) == ["api.example.test"]

        # HTTP-01 by webroot: the web server served the token file, which is gone afterwards
        assert _renew(web_id).status == "deployed"
        served = [(p, s) for m, p, s in web.seen if p.startswith("/.well-known/acme-challenge/")]
        assert served and all(s == 200 for _, s in served)
        assert list((webroot / ".well-known" / "acme-challenge").iterdir()) == []
        assert peb.log.read_text().count("Issued certificate serial") == 2

        # ARI: without renewalInfo two thirds of pebble's five-year lifetime decide (not due);
        # a suggested window that has passed renews; a future one is kept until Retry-After
        assert _renew(web_id).status == "not_due"
        now = utcnow()
        proxy.renewal_info = {"suggestedWindow": {"start": _rfc3339(now - timedelta(hours=2)),
                                                  "end": _rfc3339(now - timedelta(hours=1))}}
        first_id = _ari_id(live / "www.pem")
        assert _renew(web_id).status == "deployed"
        proxy.renewal_info = {"suggestedWindow": {"start": _rfc3339(now + timedelta(days=10)),
                                                  "end": _rfc3339(now + timedelta(days=11))},
                              "explanationURL": "https://ca.example/ari"}
        second_id = _ari_id(live / "www.pem")
        assert _renew(web_id).status == "not_due"
        assert _renew(web_id).status == "not_due"  # asked again only after Retry-After
        assert [p for m, p, _ in proxy.log.seen if p.startswith("/renewal-info/")] == [
            f"/renewal-info/{first_id}", f"/renewal-info/{second_id}"]
        # the order names the certificate it replaces only where the server offers ARI
        assert [o.get("replaces") for o in proxy.log.orders] == [None, None, None, first_id]
        with session_scope() as session:
            www = session.get(CertDeployment, web_id)
            assert now + timedelta(days=10) <= www.ari_renew_at <= now + timedelta(days=11)
            assert www.ari_explanation_url == "https://ca.example/ari"
            assert timedelta(minutes=59) <= www.ari_next_check - now <= timedelta(minutes=61)
        proxy.renewal_info = None
        assert peb.log.read_text().count("Issued certificate serial") == 3

        # PATCH: bad values are problems and change nothing
        for bad in ({"cert_path": "/etc/passwd"}, {"reload_argv": ["/bin/sh", "-c", "x"]},
                    {"acme_webroot": str(webroot)}, {"name": "x"}, {"enabled": None}, {},
                    {"acme_dns_settings": {"url": chall.management, "token": "x"}}):
            answer = api.patch(f"/v1/certs/ca/deployments/{dns_id}", headers=admin, json=bad)
            assert (answer.status_code, answer.headers["content-type"]) == (422, PROBLEM), (bad, answer.text)
        assert api.patch("/v1/certs/ca/deployments/nosuch", headers=admin,
                         json={"enabled": False}).status_code == 404
        viewer = auth(make_key("analyst"))
        assert api.patch(f"/v1/certs/ca/deployments/{dns_id}", headers=viewer,
                         json={"enabled": False}).status_code == 403
        row = api.get(f"/v1/certs/ca/deployments/{dns_id}", headers=admin).json()
        assert (row["cert_path"], row["enabled"], row["status"]) == (str(live / "api.pem"), True, "deployed")

        changed = api.patch(f"/v1/certs/ca/deployments/{dns_id}", headers=admin, json={
            "cert_path": str(live / "api-new.pem"), "enabled": False})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["cert_path"], changed.json()["enabled"], changed.json()["status"]) == (
            str(live / "api-new.pem"), False, "pending")
        assert _renew(dns_id, force=True).status == "disabled"
        assert api.patch(f"/v1/certs/ca/deployments/{dns_id}", headers=admin,
                         json={"enabled": True}).json()["enabled"] is True
        assert _renew(dns_id).status == "deployed"  # pending: deployed to the new path
        assert x509.load_pem_x509_certificate((live / "api-new.pem").read_bytes()).serial_number \
            != leaf.serial_number
    with session_scope() as session:
        updates = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "certs.deployment.update").order_by(AuditEntry.seq)).all()
        assert [sorted(u.details["changes"]) for u in updates] == [["cert_path", "enabled"], ["enabled"]]
        assert updates[0].details["changes"]["cert_path"] == [str(live / "api.pem"),
                                                              str(live / "api-new.pem")]
        kinds = session.scalars(select(SecurityEvent.kind)).all()
        assert kinds.count("cert.deployment_changed") == 2
        assert [o.status for o in session.scalars(select(CertAcmeOrder).order_by(CertAcmeOrder.id))] == [
            "done", "done", "done", "done"]


def test_cli_update_usage_errors() -> None:
    for args in (["d1", "--chain", "/x/c.pem", "--no-chain"], ["d1"], ["d1", "--dns-setting", "novalue"]):
        result = CliRunner().invoke(cli, ["certs", "ca", "update", *args])
        assert result.exit_code == 2, (args, result.output)
