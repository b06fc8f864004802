"""``secops certs check --local --json`` against real TLS listeners on loopback."""

from __future__ import annotations

import ssl
from datetime import timedelta

import pytest

from secops.certs import weak_protocols_supported
from tests.certs.conftest import ids, run_check
from tests.certs.pki import Pki, issue, now, openssl_signed, rsa_key
from tests.certs.servers import TlsServer

KEYS = ["target", "subject", "sans", "issuer", "serial", "not_before", "not_after", "days_left",
        "key_type", "key_bits", "signature_algorithm", "spki_sha256", "self_signed",
        "chain_complete", "hostname_match", "findings"]


def test_good_endpoint_gives_exact_fields_and_exit_0(pki: Pki, root_file: str) -> None:
    start = now() - timedelta(days=3)
    leaf = pki.leaf("localhost", not_before=start, not_after=start + timedelta(days=90), serial=0xBEEF01)
    with TlsServer(leaf, (pki.intermediate,)) as server:
        code, lines, _ = run_check("--ca-file", root_file, server.target)
    assert code == 0
    [line] = lines
    assert list(line) == KEYS
    expected_days = (start + timedelta(days=90) - now()).total_seconds() / 86400
    assert abs(line["days_left"] - expected_days) < 0.01
    del line["days_left"]
    assert line == {
        "target": server.target, "subject": "CN=localhost", "sans": ["localhost", "127.0.0.1"],
        "issuer": "CN=Test Intermediate CA", "serial": "beef01",
        "not_before": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": (start + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key_type": "EC", "key_bits": 256, "signature_algorithm": "ecdsa-with-SHA256",
        "spki_sha256": leaf.pin, "self_signed": False, "chain_complete": True,
        "hostname_match": True, "findings": [],
    }


def test_validity_findings(pki: Pki, root_file: str) -> None:
    t = now()
    cases = {
        "expired": (pki.leaf(not_before=t - timedelta(days=100), not_after=t - timedelta(days=3)),
                    [("cert.expired", "critical")]),
        "not_yet_valid": (pki.leaf(not_before=t + timedelta(days=1), not_after=t + timedelta(days=91)),
                          [("cert.not_yet_valid", "high")]),
        # leaf() starts a day ago: 1 of 2.5 days used, renewal not due yet
        "2d": (pki.leaf(not_after=t + timedelta(days=1.5)), [("cert.expiring", "critical")]),
        "7d": (pki.leaf(not_after=t + timedelta(days=6)), [("cert.expiring", "high")]),
        "14d": (pki.leaf(not_after=t + timedelta(days=12)), [("cert.expiring", "medium")]),
        "30d": (pki.leaf(not_after=t + timedelta(days=25)), [("cert.expiring", "low")]),
        "renewal": (pki.leaf(not_before=t - timedelta(days=210), not_after=t + timedelta(days=90)),
                    [("cert.renewal_due", "low")]),
    }
    servers = {name: TlsServer(leaf, (pki.intermediate,)) for name, (leaf, _) in cases.items()}
    for server in servers.values():
        server.__enter__()
    try:
        code, lines, _ = run_check("--ca-file", root_file, *(s.target for s in servers.values()))
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    assert code == 1
    assert [line["target"] for line in lines] == [s.target for s in servers.values()]
    for (name, (_, expected)), line in zip(cases.items(), lines, strict=True):
        assert ids(line) == expected, name
    assert lines[0]["days_left"] < -2.99


def test_renewal_only_is_low_and_exit_0(pki: Pki, root_file: str) -> None:
    t = now()
    leaf = pki.leaf(not_before=t - timedelta(days=210), not_after=t + timedelta(days=90))
    with TlsServer(leaf, (pki.intermediate,)) as server:
        code, [line], _ = run_check("--ca-file", root_file, server.target)
    assert ids(line) == [("cert.renewal_due", "low")] and code == 0


def test_thresholds_are_configurable(pki: Pki, root_file: str) -> None:
    leaf = pki.leaf(not_after=now() + timedelta(days=9))
    with TlsServer(leaf, (pki.intermediate,)) as server:
        _, [default], _ = run_check("--ca-file", root_file, server.target)
        _, [custom], _ = run_check("--ca-file", root_file, "--thresholds", "3,10,20,40", server.target)
    assert ids(default) == [("cert.expiring", "medium")]
    assert ids(custom) == [("cert.expiring", "high")]


def test_weak_key_and_weak_signature(pki: Pki, root_file: str, tmp_path) -> None:
    weak_rsa = pki.leaf(key=rsa_key(1024))
    sha1 = openssl_signed("localhost", pki.intermediate, "sha1", tmp_path)
    with TlsServer(weak_rsa, (pki.intermediate,)) as a, TlsServer(sha1, (pki.intermediate,)) as b:
        code, [la, lb], _ = run_check("--ca-file", root_file, a.target, b.target)
    assert code == 1
    assert (la["key_type"], la["key_bits"]) == ("RSA", 1024)
    assert ids(la) == [("cert.weak_key", "high")]
    assert lb["signature_algorithm"] == "ecdsa-with-SHA1"
    assert lb["chain_complete"] is True
    assert ids(lb) == [("cert.weak_signature", "high")]


def test_hostname_mismatch_and_sni(pki: Pki, root_file: str) -> None:
    leaf = pki.leaf("svc.internal", sans=("svc.internal", "*.apps.internal"))
    with TlsServer(leaf, (pki.intermediate,)) as server:
        _, [by_ip], _ = run_check("--ca-file", root_file, server.target)
        _, [by_sni], _ = run_check("--ca-file", root_file, "--sni", "svc.internal", server.target)
        _, [wild], _ = run_check("--ca-file", root_file, "--sni", "api.apps.internal", server.target)
        _, [deep], _ = run_check("--ca-file", root_file, "--sni", "a.b.apps.internal", server.target)
    assert by_ip["hostname_match"] is False and ids(by_ip) == [("cert.hostname_mismatch", "high")]
    assert by_sni["hostname_match"] is True and ids(by_sni) == []
    assert wild["hostname_match"] is True
    assert deep["hostname_match"] is False


def test_chain_incomplete_and_untrusted(pki: Pki, root_file: str, tmp_path) -> None:
    leaf = pki.leaf()
    other = Pki.create("Other")
    other_root = tmp_path / "other.pem"
    other_root.write_bytes(other.root.pem)
    with TlsServer(leaf) as bare, TlsServer(leaf, (pki.intermediate,)) as full:
        code, [no_inter], _ = run_check("--ca-file", root_file, bare.target)
        _, [wrong_ca], _ = run_check("--ca-file", str(other_root), full.target)
        _, [system], _ = run_check(full.target)
    assert code == 1
    assert no_inter["chain_complete"] is False
    assert ids(no_inter) == [("cert.chain_incomplete", "medium"), ("cert.untrusted", "high")]
    # the chain is complete up to a root the store does not have: only untrusted
    assert wrong_ca["chain_complete"] is False
    assert ("cert.untrusted", "high") in ids(wrong_ca)
    assert ("cert.untrusted", "high") in ids(system)


def test_chain_with_root_sent_is_complete_but_untrusted_elsewhere(pki: Pki, tmp_path) -> None:
    leaf = pki.leaf()
    with TlsServer(leaf, (pki.intermediate, pki.root)) as server:
        _, [line], _ = run_check(server.target)
    assert line["chain_complete"] is True
    assert ids(line) == [("cert.untrusted", "high")]


def test_self_signed(tmp_path) -> None:
    leaf = issue("localhost")
    with TlsServer(leaf) as server:
        code, [line], _ = run_check(server.target)
    assert code == 1
    assert line["self_signed"] is True and line["chain_complete"] is True
    assert ids(line) == [("cert.self_signed", "medium"), ("cert.untrusted", "high")]
    assert line["issuer"] == line["subject"] == "CN=localhost"


def test_pins(pki: Pki, root_file: str) -> None:
    leaf = pki.leaf()
    other = pki.leaf()
    with TlsServer(leaf, (pki.intermediate,)) as server:
        t = server.target
        code_bad, [bad], _ = run_check("--ca-file", root_file, "--pin", f"{t}={other.pin}", t)
        code_leaf, [by_leaf], _ = run_check("--ca-file", root_file, "--pin", f"{t}={leaf.pin}", t)
        _, [by_inter], _ = run_check("--ca-file", root_file, "--pin", f"{t}={other.pin}",
                                     "--pin", f"{t}={pki.intermediate.pin}", t)
    assert code_bad == 1 and ids(bad) == [("cert.pin_mismatch", "critical")]
    assert code_leaf == 0 and ids(by_leaf) == []
    assert ids(by_inter) == []


@pytest.mark.skipif(not weak_protocols_supported(), reason="this OpenSSL cannot offer TLS 1.0/1.1")
def test_protocol_weak(pki: Pki, root_file: str) -> None:
    leaf = pki.leaf()
    with TlsServer(leaf, (pki.intermediate,), minimum=ssl.TLSVersion.TLSv1) as old, \
            TlsServer(leaf, (pki.intermediate,), minimum=ssl.TLSVersion.TLSv1,
                      maximum=ssl.TLSVersion.TLSv1) as tls10, \
            TlsServer(leaf, (pki.intermediate,)) as modern:
        code, [a, b, c], _ = run_check("--ca-file", root_file, old.target, tls10.target, modern.target)
        _, [skipped], _ = run_check("--ca-file", root_file, "--no-protocol-probe", old.target)
    assert code == 1
    assert ids(a) == [("tls.protocol_weak", "medium")] and "TLSv1.1" in a["findings"][0]["description"]
    assert ids(b) == [("tls.protocol_weak", "medium")] and "TLSv1 " in b["findings"][0]["description"] + " "
    assert ids(c) == []
    assert ids(skipped) == []
