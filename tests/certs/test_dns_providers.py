"""DNS-01 providers: settings checked against the schema, secrets kept out of settings and
out of error messages, the built-in hook provider running a real command."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from secops.certs import dns
from secops.certs.model import CertsError


class Leaky(dns.DnsProvider):
    slug = "leaky"
    settings_schema: ClassVar = {"zone": str, "ttl": int}
    required = ("zone",)
    secrets = ("api_token",)

    def add_txt(self, name: str, value: str) -> None:
        raise RuntimeError(f"401 for token {self.secret_values['api_token']} on {name}")


def test_settings_are_checked() -> None:
    assert Leaky.validate({"zone": "example.org", "ttl": 60}) == {"zone": "example.org", "ttl": 60}
    for bad, words in [({"ttl": 60}, "needs the setting(s) zone"),
                       ({"zone": "z", "ttl": "60"}, "ttl has the wrong type"),
                       ({"zone": "z", "ttl": True}, "ttl has the wrong type"),
                       ({"zone": "z", "colour": "red"}, "no setting 'colour' (known: ttl, zone)"),
                       ({"zone": "z", "api_token": "t"},
                        "SECOPS_CERTS_DNS_LEAKY_API_TOKEN_FILE or SECOPS_CERTS_DNS_LEAKY_API_TOKEN")]:
        with pytest.raises(CertsError) as caught:
            Leaky.validate(bad)
        assert words in str(caught.value)
    with pytest.raises(CertsError, match="no DNS provider named 'nosuch' is installed"):
        dns.provider_class("nosuch")
    with pytest.raises(CertsError, match="lower-case"):
        dns.provider_class("../x")
    assert dns.provider_class("hook") is dns.HookProvider
    assert dns.secret_name("my-dns", "api_token") == "certs_dns_my_dns_api_token"


def test_a_failing_provider_never_shows_its_secret() -> None:
    solver = dns.DnsSolver(Leaky({"zone": "example.org"}, {"api_token": "s3cr3t-value-1234"}))
    with pytest.raises(CertsError) as caught:
        solver.present("www.example.org", "", "v")
    message = str(caught.value)
    assert message == ("the DNS provider leaky failed to add _acme-challenge.www.example.org: "
                       "RuntimeError: 401 for token *** on _acme-challenge.www.example.org")


def test_hook_provider_runs_argv_without_a_shell(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {log}\necho >> {log}\n[ "$3" = add ] || exit 3\n')
    hook.chmod(0o755)
    solver = dns.DnsSolver(dns.build("hook", {"argv": [str(hook), "--zone", "a b;c"]}, {}))
    solver.present("api.example.org", "", "token-value")
    with pytest.raises(CertsError, match="exited with status 3 on remove"):
        solver.cleanup("api.example.org", "", "token-value")
    assert log.read_text().splitlines() == [
        "--zone|a b;c|add|_acme-challenge.api.example.org|token-value|",
        "--zone|a b;c|remove|_acme-challenge.api.example.org|token-value|"]
    for bad in ({"argv": []}, {"argv": [""]}, {"argv": ["/bin/true"], "timeout": 0}, {}):
        with pytest.raises(CertsError):
            dns.build("hook", bad, {})
