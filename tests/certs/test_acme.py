"""ACME renewal against Debian's pebble: HTTP-01 validated for real against the built-in
responder, DNS-01 through a hook, an order resumed after a crash, never ordered twice."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select

from secops.certs import ca
from secops.certs.tls import Endpoint, TlsProber
from secops.config import get_settings
from secops.db.models import AuditEntry, CertAcmeOrder, CertDeployment
from secops.db.session import session_scope
from secops.services import cert_deploy, certs
from tests.certs.pebble import free_port, pebble
from tests.certs.pki import ec_key
from tests.certs.servers import FileTlsServer


class Crash(Exception):
    """The worker dies right after the order was recorded."""


def _configure(monkeypatch, tmp_path: Path, peb, live: Path, commands: list[str], http_port: int) -> None:
    account = tmp_path / "account.key"
    account.write_bytes(ca.key_pem(ec_key()))
    for name, value in {"SECOPS_CERTS_ACME_DIRECTORY_URL": peb.directory,
                        "SECOPS_CERTS_ACME_CA_BUNDLE": str(peb.root),
                        "SECOPS_CERTS_ACME_ACCOUNT_KEY_FILE": str(account),
                        "SECOPS_CERTS_ACME_HTTP_ADDRESS": f"127.0.0.1:{http_port}",
                        "SECOPS_CERTS_ALLOWED_DIRS": f'["{live}"]',
                        "SECOPS_CERTS_RELOAD_COMMANDS": f"{commands!r}".replace("'", '"')}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def _renew(deployment_id: str, *, force: bool = False, crash: bool = False):
    with session_scope() as session:
        def checkpoint() -> None:
            session.commit()
            if crash:
                raise Crash
        return cert_deploy.renew(session=session, settings=get_settings(), deployment_id=deployment_id,
                                 force=force, actor="tests", checkpoint=checkpoint,
                                 prober=TlsProber(timeout=2, probe_weak=False))


def test_http01_renewal_deploys_and_a_crashed_order_is_resumed(sqlite_env, tmp_path, monkeypatch) -> None:
    live = tmp_path / "live"
    live.mkdir()
    with pebble(tmp_path / "pebble") as peb:
        _configure(monkeypatch, tmp_path, peb, live, [], peb.http_port)
        with FileTlsServer(live / "site.pem", live / "site.key") as server:
            with session_scope() as session:
                target = certs.add_endpoint(session=session, host="127.0.0.1", port=server.port,
                                            sni="localhost", owner=None, tags=[], pins=[], created_by="tests")
                row = cert_deploy.create_deployment(
                    session=session, settings=get_settings(), name="site", common_name="localhost",
                    sans=["localhost"], target_id=target.id, cert_path=str(live / "site.pem"),
                    key_path=str(live / "site.key"), chain_path=None, reload_argv=[], lifetime_hours=24,
                    reuse_key=False, created_by="tests", issuer="acme", acme_challenge="http-01")
                deployment_id = row.id
            first = _renew(deployment_id)
            assert (first.status, first.detail) == ("deployed", None)
            served = TlsProber(timeout=2, probe_weak=False).handshake(
                Endpoint("127.0.0.1", server.port, "localhost"))
            chain = x509.load_pem_x509_certificates((live / "site.pem").read_bytes())
            assert hashlib.sha256(served.chain[0]).hexdigest() == hashlib.sha256(
                chain[0].public_bytes(ca.serialization.Encoding.DER)).hexdigest()
            assert chain[0].issuer.rfc4514_string().startswith("CN=Pebble Intermediate CA")
            assert stat.S_IMODE(os.stat(live / "site.key").st_mode) == 0o600
            assert not (live / "site.key.pending").exists()
            # five-year pebble certificate, no renewalInfo in this pebble: two thirds not reached
            assert _renew(deployment_id).status == "not_due"

            # the worker dies after recording the order: the next run resumes that order
            with pytest.raises(Crash):
                _renew(deployment_id, force=True, crash=True)
            with session_scope() as session:
                [crashed] = session.scalars(select(CertAcmeOrder).where(
                    CertAcmeOrder.status == "ordered")).all()
                crashed_url = crashed.order_url
            assert (live / "site.key.pending").exists()
            resumed = _renew(deployment_id, force=True)
            assert resumed.status == "deployed"
    with session_scope() as session:
        orders = session.scalars(select(CertAcmeOrder).order_by(CertAcmeOrder.id)).all()
        assert [o.status for o in orders] == ["done", "done"] and orders[1].order_url == crashed_url
        actions = session.scalars(select(AuditEntry.action)).all()
        assert actions.count("certs.acme.order") == 2 and actions.count("certs.acme.resume") == 1
        assert actions.count("certs.deploy") == 2
        assert session.get(CertDeployment, deployment_id).status == "deployed"
    assert peb.log.read_text().count("Issued certificate serial") == 2


def test_dns01_through_the_built_in_hook_provider(sqlite_env, tmp_path, monkeypatch) -> None:
    live = tmp_path / "live"
    live.mkdir()
    hook_log = tmp_path / "hook.log"
    hook = live / "dns-hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$@" >> {hook_log}\n')
    hook.chmod(0o755)
    with pebble(tmp_path / "pebble", always_valid=True) as peb:
        _configure(monkeypatch, tmp_path, peb, live, [str(hook)], free_port())
        with session_scope() as session:
            row = cert_deploy.create_deployment(
                session=session, settings=get_settings(), name="api", common_name="api.example.org",
                sans=["api.example.org"], target_id=None, cert_path=str(live / "api.pem"),
                key_path=str(live / "api.key"), chain_path=str(live / "api-chain.pem"), reload_argv=[],
                lifetime_hours=24, reuse_key=False, created_by="tests", issuer="acme",
                acme_challenge="dns-01", acme_dns_provider="hook", acme_dns_settings={"argv": [str(hook)]})
            deployment_id = row.id
        outcome = _renew(deployment_id)
        assert outcome.status == "deployed", outcome.detail
    calls = hook_log.read_text().splitlines()
    assert [c.split()[:2] for c in calls] == [["add", "_acme-challenge.api.example.org"],
                                              ["remove", "_acme-challenge.api.example.org"]]
    assert calls[0].split()[2] == calls[1].split()[2] and len(calls[0].split()[2]) == 43
    leaf = x509.load_pem_x509_certificate((live / "api.pem").read_bytes())
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["api.example.org"]
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(CertAcmeOrder)) == 1
