"""The internal CA: mTLS with its certificates over real handshakes, CRL, API and CLI."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from secops.certs import ca
from secops.certs.model import CertsError
from secops.cli import cli
from tests.factories import auth, make_key
from tests.platform.helpers import platform


def _mtls_handshake(server_pem: bytes, server_key: bytes, client_pem: bytes, client_key: bytes,
                    root_pem: bytes, crl_pem: bytes | None = None) -> str | None:
    """A real mTLS handshake on loopback: None when it succeeded, else the server's error."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "s.pem").write_bytes(server_pem + server_key)
        (d / "c.pem").write_bytes(client_pem + client_key)
        (d / "root.pem").write_bytes(root_pem + (crl_pem or b""))
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(d / "s.pem")
        server_ctx.verify_mode = ssl.CERT_REQUIRED
        server_ctx.load_verify_locations(d / "root.pem")
        if crl_pem:
            server_ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        client_ctx = ssl.create_default_context(cafile=str(d / "root.pem"))
        client_ctx.load_cert_chain(d / "c.pem")
        listener = socket.create_server(("127.0.0.1", 0))
        error: list[str] = []

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except ssl.SSLError as exc:
                error.append(exc.reason or str(exc))

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=5) as raw, \
                    client_ctx.wrap_socket(raw, server_hostname="svc.internal") as tls:
                tls.recv(2)
        except (ssl.SSLError, OSError):
            pass
        thread.join(5)
        listener.close()
        return error[0] if error else None


def test_root_intermediate_and_short_lived_mtls_with_crl() -> None:
    now = datetime.now(UTC)
    authority = ca.create_authority("Test", now=now)
    inter, inter_key = authority.intermediate, authority.intermediate_key
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = ca.issue(inter, inter_key, server_key.public_key(), common_name="svc", sans=["svc.internal"],
                      profile="server", now=now)
    client = ca.issue(inter, inter_key, client_key.public_key(), common_name="alice", sans=[],
                      profile="client", now=now)
    assert client.not_valid_after_utc - now <= timedelta(hours=24)
    assert client.not_valid_after_utc - now > timedelta(hours=23, minutes=59)
    chain = ca.pem(inter)
    args = (ca.pem(server) + chain, ca.key_pem(server_key), ca.pem(client) + chain, ca.key_pem(client_key),
            ca.pem(authority.root))
    assert _mtls_handshake(*args) is None
    crl = ca.build_crl(inter, inter_key, [(client.serial_number, now)], now=now)
    root_crl = ca.build_crl(authority.root, authority.root_key, [], now=now)
    encoding = ca.serialization.Encoding.PEM
    pems = crl.public_bytes(encoding) + root_crl.public_bytes(encoding)
    assert _mtls_handshake(*args, crl_pem=pems) is not None  # revoked: the server refuses it
    # renewal at two thirds of 24 hours
    assert not ca.renewal_due(client, now + timedelta(hours=15, minutes=50))
    assert ca.renewal_due(client, now + timedelta(hours=16))
    with pytest.raises(CertsError, match="at least one DNS name"):
        ca.issue(inter, inter_key, server_key.public_key(), common_name="x", sans=[], profile="server",
                 now=now)
    with pytest.raises(CertsError, match="between 5 minutes and 90 days"):
        ca.issue(inter, inter_key, client_key.public_key(), common_name="x", sans=[], profile="client",
                 now=now, lifetime=timedelta(days=365))


@pytest.mark.integration
def test_ca_through_cli_and_api(sqlite_env, tmp_path, monkeypatch) -> None:
    ca_dir = tmp_path / "ca"
    init = CliRunner().invoke(cli, ["certs", "ca", "init", "--dir", str(ca_dir), "--name", "Ops"])
    assert init.exit_code == 0, init.output
    assert oct((ca_dir / "intermediate.key").stat().st_mode & 0o777) == "0o600"
    assert oct((ca_dir / "root.key").stat().st_mode & 0o777) == "0o600"
    again = CliRunner().invoke(cli, ["certs", "ca", "init", "--dir", str(ca_dir)])
    assert again.exit_code == 2 and "refusing to overwrite" in again.output
    extra = {"SECOPS_CERTS_CA_CHAIN_FILE": str(ca_dir / "chain.pem"),
             "SECOPS_CERTS_CA_KEY_FILE": str(ca_dir / "intermediate.key")}
    with platform(sqlite_env, tmp_path, monkeypatch, extra, worker=False) as url:
        admin_key = make_key("admin")
        env = {**os.environ, **sqlite_env, "SECOPS_API_URL": url, "SECOPS_API_KEY": admin_key}
        out_dir = tmp_path / "alice"
        run = subprocess.run([sys.executable, "-m", "secops.cli", "certs", "ca", "issue-client", "alice",
                              "--out", str(out_dir)], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert oct((out_dir / "alice.key").stat().st_mode & 0o777) == "0o600"
        certs = x509.load_pem_x509_certificates((out_dir / "alice.pem").read_bytes())
        assert [c.subject.rfc4514_string() for c in certs] == ["CN=alice", "CN=Ops Intermediate CA",
                                                              "CN=Ops Root CA"]
        verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca_dir / "root.pem"), "-untrusted",
                                 str(ca_dir / "intermediate.pem"), "-purpose", "sslclient",
                                 str(out_dir / "alice.pem")], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        not_due = subprocess.run([sys.executable, "-m", "secops.cli", "certs", "ca", "issue-client", "alice",
                                  "--out", str(out_dir), "--renew"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert not_due.returncode == 0 and "not due" in not_due.stdout

        client = httpx.Client(base_url=url, headers=auth(admin_key), timeout=30)
        serial = format(certs[0].serial_number, "x")
        listed = client.get("/v1/certs/ca/certificates").json()
        assert [(r["serial"], r["common_name"], r["profile"]) for r in listed] == [
            (serial, "alice", "client")]
        # an analyst may not issue; bad CSRs are 422
        analyst = httpx.Client(base_url=url, headers=auth(make_key("analyst")), timeout=30)
        assert analyst.post("/v1/certs/ca/certificates", json={"csr": "x" * 200}).status_code == 403
        bad = client.post("/v1/certs/ca/certificates", json={"csr": "-----BEGIN CERTIFICATE REQUEST-----\n"
                                                                     + "A" * 200})
        assert bad.status_code == 422 and "certificate signing request" in bad.json()["detail"]

        empty = x509.load_der_x509_crl(httpx.get(f"{url}/v1/certs/ca/crl").content)
        assert len(list(empty)) == 0
        revoked = client.post(f"/v1/certs/ca/certificates/{serial}/revoke", json={"reason": "laptop lost"})
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert client.post(f"/v1/certs/ca/certificates/{serial}/revoke", json={}).status_code == 409
        crl = x509.load_der_x509_crl(httpx.get(f"{url}/v1/certs/ca/crl").content)
        assert [r.serial_number for r in crl] == [certs[0].serial_number]
        assert crl.is_signature_valid(certs[1].public_key())
        chain = httpx.get(f"{url}/v1/certs/ca/chain").text
        assert chain == (ca_dir / "chain.pem").read_text()
        actions = [e["action"] for e in client.get("/v1/audit").json()["items"]]
        assert "certs.ca.issue" in actions and "certs.ca.revoke" in actions


def test_public_chain_needs_no_private_key(sqlite_env, tmp_path, monkeypatch) -> None:
    """Relying parties fetch the chain; serving it must not need (or read) the CA key,
    while issuing still does."""
    from fastapi.testclient import TestClient

    from secops.api.app import create_app
    from secops.config import get_settings

    ca_dir = tmp_path / "ca"
    init = CliRunner().invoke(cli, ["certs", "ca", "init", "--dir", str(ca_dir), "--name", "Ops"])
    assert init.exit_code == 0, init.output
    monkeypatch.setenv("SECOPS_CERTS_CA_CHAIN_FILE", str(ca_dir / "chain.pem"))
    monkeypatch.delenv("SECOPS_CERTS_CA_KEY_FILE", raising=False)
    monkeypatch.delenv("SECOPS_CERTS_CA_KEY", raising=False)
    get_settings.cache_clear()
    client = TestClient(create_app(), raise_server_exceptions=False)
    served = client.get("/v1/certs/ca/chain")
    assert served.status_code == 200
    assert served.text == (ca_dir / "chain.pem").read_text()
    assert served.headers["content-type"].startswith("application/pem-certificate-chain")
    crl = client.get("/v1/certs/ca/crl")  # signing the list does need the key
    assert crl.status_code == 503
    assert crl.json()["detail"].startswith("the internal CA is not configured")
