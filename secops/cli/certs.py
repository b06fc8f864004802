"""``secops certs``: certificate checks, inventory and the internal CA.

Local mode (``check --local``) runs :class:`secops.certs.Checker` in this process, the
same code a worker runs. Output contract (docs/certificates.md): one JSON object per
line, in argument order (a directory's files sorted): for an endpoint its leaf
certificate, for a file every certificate in it, with exactly the keys ``target,
subject, sans, issuer, serial, not_before, not_after, days_left, key_type, key_bits,
signature_algorithm, spki_sha256, self_signed, chain_complete, hostname_match,
findings``; a target that yields no certificate prints ``{"target", "error",
"findings"}``. Exit status: 0 no finding of medium or above, 1 otherwise, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

import click

from secops.certs import CertsError, Checker, Thresholds, parse_pins, parse_target
from secops.certs.model import Result, at_least

EXIT_CLEAN, EXIT_FOUND, EXIT_USAGE = 0, 1, 2
PLATFORM_MODE = ("give --local to check in this process; to check through the platform, "
                 "register endpoints with 'secops certs endpoints add' (docs/certificates.md)")


def _report(result: Result, out: TextIO) -> None:
    data = result.to_dict()
    if "error" in data:
        out.write(f"ERROR     {data['target']}: {data['error']}\n")
    else:
        out.write(f"{data['days_left']:>9.1f}d {data['target']}  {data['subject']}  "
                  f"(issuer {data['issuer']}, expires {data['not_after']})\n")
    for f in data["findings"]:
        out.write(f"    {f['severity']:<8} {f['id']:<24} {f['description']}\n")


def run_check(targets: tuple[str, ...], *, checker: Checker, sni: str | None, as_json: bool,
              out: TextIO | None = None) -> int:
    """Check ``targets`` in-process, print one result per line, return the exit status."""
    stream = out if out is not None else sys.stdout
    parsed = [parse_target(t, sni=sni) for t in targets]  # all usage errors before any output
    status = EXIT_CLEAN
    for result in checker.check(parsed):
        if as_json:
            stream.write(json.dumps(result.to_dict()) + "\n")
        else:
            _report(result, stream)
        stream.flush()
        if at_least(result.worst, "medium"):
            status = EXIT_FOUND
    return status


@click.group("certs")
def certs() -> None:
    """TLS certificate checks, inventory, internal CA, deployment and renewal."""


@certs.command("check")
@click.option("--local", is_flag=True, help="Run the checks in this process.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per certificate per line.")
@click.option("--ca-file", type=click.Path(dir_okay=False),
              help="Trust these CAs instead of the system store.")
@click.option("--pin", "pins", multiple=True, metavar="TARGET=BASE64",
              help="An accepted SPKI pin (pin-sha256) for TARGET; repeat for backups.")
@click.option("--sni", help="Server name to send and to match (default: the target's host).")
@click.option("--thresholds", default="2,7,14,30", show_default=True,
              help="Days left at which cert.expiring is critical,high,medium,low.")
@click.option("--renew-at", type=float, default=2 / 3, show_default="0.667",
              help="Fraction of the lifetime after which cert.renewal_due is raised.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=5.0, show_default=True,
              help="Seconds allowed for each connect and each handshake.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option("--no-protocol-probe", is_flag=True, help="Skip the TLS 1.0/1.1 acceptance probe.")
@click.argument("targets", nargs=-1, required=True)
def check(local: bool, as_json: bool, ca_file: str | None, pins: tuple[str, ...], sni: str | None,
          thresholds: str, renew_at: float, timeout: float, concurrency: int,
          no_protocol_probe: bool, targets: tuple[str, ...]) -> None:
    """Check endpoints (host:port, https://URL) and certificate files or directories."""
    if not local:
        raise click.UsageError(PLATFORM_MODE)
    try:
        checker = Checker(thresholds=Thresholds.from_days(thresholds, renewal_fraction=renew_at),
                          ca_file=ca_file, timeout=timeout, workers=concurrency,
                          probe_weak=not no_protocol_probe, pins=parse_pins(pins))
        code = run_check(targets, checker=checker, sni=sni, as_json=as_json)
    except CertsError as exc:
        raise click.UsageError(str(exc)) from None
    if not no_protocol_probe and not checker.prober.probe_weak:
        click.echo("note: this OpenSSL cannot offer TLS 1.0/1.1, so tls.protocol_weak was not "
                   "checked (docs/certificates.md)", err=True)
    sys.exit(code)


def _register_remote() -> None:
    from secops.cli import certs_ca, certs_remote

    for command in (certs_remote.endpoints, certs_remote.files, certs_remote.scan,
                    certs_remote.certificates, certs_ca.ca_group):
        certs.add_command(command)


_register_remote()
