"""Files and bad input: malformed PEM, DER garbage, unreadable files, dead endpoints."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.certs.conftest import ids, run_check
from tests.certs.pki import Pki, issue, now, openssl_signed, rsa_key
from tests.certs.servers import PlaintextServer, SilentServer, TlsServer, closed_port


def test_pem_bundle_gives_every_certificate(pki: Pki, tmp_path: Path) -> None:
    leaf = pki.leaf("files.example", sans=("files.example",))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"comment line\n" + leaf.pem + pki.intermediate.pem + pki.root.pem)
    code, lines, _ = run_check(str(bundle))
    assert code == 0
    assert [line["subject"] for line in lines] == ["CN=files.example", "CN=Test Intermediate CA",
                                                   "CN=Test Root CA"]
    assert [line["target"] for line in lines] == [str(bundle)] * 3
    assert [line["spki_sha256"] for line in lines] == [leaf.pin, pki.intermediate.pin, pki.root.pin]
    assert [line["self_signed"] for line in lines] == [False, False, True]
    assert all(line["chain_complete"] is None and line["hostname_match"] is None for line in lines)
    assert all(line["findings"] == [] for line in lines)  # a root in a bundle is not a finding


def test_der_file_and_directory_walk(pki: Pki, tmp_path: Path) -> None:
    expired = pki.leaf("old", not_before=now() - timedelta(days=60), not_after=now() - timedelta(days=1))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.der").write_bytes(expired.der)
    (tmp_path / "a.crt").write_bytes(pki.leaf("fresh").pem)
    (tmp_path / "notes.txt").write_text("not a certificate, not read in a directory walk")
    code, lines, _ = run_check(str(tmp_path))
    assert code == 1
    assert [Path(line["target"]).name for line in lines] == ["a.crt", "b.der"]
    assert ids(lines[0]) == []
    assert ids(lines[1]) == [("cert.expired", "critical")]


def test_self_signed_leaf_file_and_md5(pki: Pki, tmp_path: Path) -> None:
    own = tmp_path / "own.pem"
    own.write_bytes(issue("selfie").pem)
    md5 = tmp_path / "md5.pem"
    rsa_ca = issue("RSA CA", key=rsa_key(2048), ca=True, sans=())
    md5.write_bytes(openssl_signed("legacy", rsa_ca, "md5", tmp_path).pem)
    code, [a, b], _ = run_check(str(own), str(md5))
    assert ids(a) == [("cert.self_signed", "medium")]
    assert b["signature_algorithm"] == "md5WithRSAEncryption"
    assert ids(b) == [("cert.weak_signature", "high")]
    assert code == 1


def test_malformed_inputs_are_findings_and_the_run_goes_on(pki: Pki, tmp_path: Path) -> None:
    bad = tmp_path / "certs"
    bad.mkdir()
    good = pki.leaf("good")
    body = good.pem.decode().splitlines()
    broken_pem = "\n".join([body[0], body[1][:10] + "!!!" + body[1][13:], *body[2:]]) + "\n"
    (bad / "1-broken.pem").write_text(broken_pem)
    (bad / "2-garbage.der").write_bytes(os.urandom(300))
    (bad / "3-unterminated.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n")
    (bad / "4-dangling.pem").symlink_to(tmp_path / "missing-target")
    empty_block = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    (bad / "5-good.pem").write_bytes(good.pem + empty_block)
    code, lines, stderr = run_check(str(bad))
    assert code == 1 and "Traceback" not in stderr
    names = [Path(line["target"]).name for line in lines]
    assert names == ["1-broken.pem", "2-garbage.der", "3-unterminated.pem", "4-dangling.pem",
                     "5-good.pem", "5-good.pem"]
    assert ids(lines[0]) == [("cert.malformed", "high")] and "malformed PEM" in lines[0]["error"]
    assert ids(lines[1]) == [("cert.malformed", "high")] and "not a certificate" in lines[1]["error"]
    assert ids(lines[2]) == [("cert.malformed", "high")] and "END line" in lines[2]["error"]
    assert ids(lines[3]) == [("file.unreadable", "medium")] and "cannot read" in lines[3]["error"]
    assert lines[4]["subject"] == "CN=good" and ids(lines[4]) == []
    assert ids(lines[5]) == [("cert.malformed", "high")]
    assert set(lines[0]) == {"target", "error", "findings"}


def test_unreadable_file_mode(pki: Pki, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads mode-000 files (the dangling link above covers unreadable files)")
    path = tmp_path / "cert.pem"
    path.write_bytes(pki.leaf().pem)
    path.chmod(0)
    code, [line], _ = run_check(str(tmp_path))
    assert ids(line) == [("file.unreadable", "medium")] and code == 1


def test_dead_endpoints_are_findings_and_the_run_goes_on(pki: Pki, root_file: str) -> None:
    with SilentServer() as silent, PlaintextServer() as plain, \
            TlsServer(pki.leaf(), (pki.intermediate,)) as ok:
        refused = f"127.0.0.1:{closed_port()}"
        code, lines, stderr = run_check("--ca-file", root_file, "--timeout", "0.5", silent.target,
                                        "no-such-host.invalid:443", refused, plain.target, ok.target)
    assert code == 1 and "Traceback" not in stderr
    assert [line["target"] for line in lines] == [silent.target, "no-such-host.invalid:443", refused,
                                                  plain.target, ok.target]
    for line in lines[:4]:
        assert set(line) == {"target", "error", "findings"}
        assert ids(line) == [("tls.unreachable", "high")]
    assert "timed out after 0.5 s during the TLS handshake" == lines[0]["error"]
    assert lines[1]["error"].startswith("cannot resolve the host name")
    assert lines[2]["error"] == "connection refused"
    assert "does not speak TLS" in lines[3]["error"]
    assert ids(lines[4]) == []


def test_https_url_target(pki: Pki, root_file: str) -> None:
    with TlsServer(pki.leaf(), (pki.intermediate,)) as server:
        url = f"https://localhost:{server.port}/some/path?q=1"
        code, [line], _ = run_check("--ca-file", root_file, url)
    assert code == 0 and line["target"] == url and line["hostname_match"] is True


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args in (["not-a-target"], ["http://example.org/"], ["host:99999"], ["--pin", "x=notbase64", "a:1"],
                 ["--thresholds", "30,14,7,2", "a:1"], ["--ca-file", str(tmp_path / "none.pem"), "a:1"],
                 [str(tmp_path / "missing.pem")]):
        code, lines, stderr = run_check(*args)
        assert (code, lines) == (2, []), args
        assert "Traceback" not in stderr and stderr.strip(), args
    from click.testing import CliRunner

    from secops.cli import cli
    result = CliRunner().invoke(cli, ["certs", "check", "--json", "a:1"])
    assert result.exit_code == 2 and "--local" in result.stderr
