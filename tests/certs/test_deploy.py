"""Deployment: atomic writes, 0600 keys, reload hook, rollback on hook failure or mismatch."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from secops.certs.deploy import Deployer, DeploySpec
from secops.certs.model import CertsError
from secops.certs.tls import Endpoint, TlsProber
from tests.certs.pki import Pki
from tests.certs.servers import FileTlsServer

OK_HOOK = (sys.executable, "-c", "print('reloaded')")
FAIL_HOOK = (sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)")


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_deploy_verify_and_rollbacks(pki: Pki, tmp_path: Path) -> None:
    live = tmp_path / "live"
    cert_path, key_path, chain_path = live / "cert.pem", live / "key.pem", live / "chain.pem"
    first, second, third = pki.leaf(), pki.leaf(), pki.leaf()
    deployer = Deployer(TlsProber(timeout=2, probe_weak=False), sleep=lambda _: None)
    with FileTlsServer(cert_path, key_path) as server:
        spec = DeploySpec(cert_path, key_path, chain_path, OK_HOOK, Endpoint("127.0.0.1", server.port),
                          verify_attempts=2)
        result = deployer.deploy(spec, first.pem, first.key_pem, pki.intermediate.pem)
        assert (result.status, result.reason) == ("deployed", None)
        assert result.served == result.fingerprint == hashlib.sha256(first.der).hexdigest()
        assert result.hook_output.strip() == "reloaded"
        assert _mode(key_path) == 0o600 and _mode(cert_path) == 0o644
        assert (key_path.read_bytes(), cert_path.read_bytes(), chain_path.read_bytes()) == (
            first.key_pem, first.pem, pki.intermediate.pem)

        assert deployer.deploy(spec, second.pem, second.key_pem, pki.intermediate.pem).status == "deployed"
        assert (live / "cert.pem.previous").read_bytes() == first.pem
        assert (live / "key.pem.previous").read_bytes() == first.key_pem
        assert _mode(live / "key.pem.previous") == 0o600

        # the hook fails: the second pair is back in place
        failed = deployer.deploy(DeploySpec(cert_path, key_path, chain_path, FAIL_HOOK), third.pem,
                                 third.key_pem, pki.intermediate.pem)
        assert failed.status == "rolled_back" and failed.reason.startswith(
            "the reload hook exited with status 3")
        assert (cert_path.read_bytes(), key_path.read_bytes()) == (second.pem, second.key_pem)
        missing = deployer.deploy(DeploySpec(cert_path, key_path, chain_path, ("/nonexistent/reload",)),
                                  third.pem, third.key_pem)
        assert missing.status == "rolled_back" and "was not found" in missing.reason
        assert cert_path.read_bytes() == second.pem

    # the endpoint keeps serving another certificate: rolled back after the check
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other.key"
    other_cert.write_bytes(first.pem)
    other_key.write_bytes(first.key_pem)
    with FileTlsServer(other_cert, other_key) as stale:
        spec = DeploySpec(cert_path, key_path, chain_path, OK_HOOK, Endpoint("127.0.0.1", stale.port),
                          verify_attempts=2)
        mismatch = deployer.deploy(spec, third.pem, third.key_pem, pki.intermediate.pem)
    assert mismatch.status == "rolled_back"
    assert "serves another certificate" in mismatch.reason
    assert mismatch.served == hashlib.sha256(first.der).hexdigest()
    assert (cert_path.read_bytes(), key_path.read_bytes()) == (second.pem, second.key_pem)


def test_first_deployment_rolled_back_leaves_nothing_and_bad_pairs_refused(pki: Pki, tmp_path: Path) -> None:
    leaf, other = pki.leaf(), pki.leaf()
    spec = DeploySpec(tmp_path / "c.pem", tmp_path / "k.pem", None, FAIL_HOOK)
    result = Deployer().deploy(spec, leaf.pem, leaf.key_pem, pki.intermediate.pem)
    assert result.status == "rolled_back" and sorted(tmp_path.iterdir()) == []
    with pytest.raises(CertsError, match="does not belong"):
        Deployer().deploy(spec, leaf.pem, other.key_pem)
    with pytest.raises(CertsError, match="not valid PEM"):
        Deployer().deploy(spec, b"junk", leaf.key_pem)
    assert sorted(tmp_path.iterdir()) == []
    # without a chain path the chain follows the certificate in one file
    ok = Deployer().deploy(DeploySpec(tmp_path / "c.pem", tmp_path / "k.pem"), leaf.pem, leaf.key_pem,
                           pki.intermediate.pem)
    assert ok.status == "deployed" and (tmp_path / "c.pem").read_bytes() == leaf.pem + pki.intermediate.pem
