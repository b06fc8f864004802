"""``secops certs ca``: create the internal CA, issue and renew operator client certificates.

``init`` runs locally and writes the root and intermediate (keys mode 0600); the platform
then reads the intermediate's key through the secret reader. ``issue-client`` makes the
private key on the operator's machine and sends only a CSR to the API; with ``--renew`` it
does nothing until two thirds of the current certificate's lifetime have passed, then
renews with the same key, so it can run from a timer.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from secops.certs import ca
from secops.cli.client import Client


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the start, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@click.group("ca")
def ca_group() -> None:
    """The internal certificate authority for mTLS."""


@ca_group.command("init")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="SecOps Internal", show_default=True)
def init(directory: Path, name: str) -> None:
    """Create a root and an intermediate in DIR (refuses to overwrite)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {n: directory / n for n in ("root.pem", "root.key", "intermediate.pem", "intermediate.key",
                                         "chain.pem")}
    existing = [str(p) for p in files.values() if p.exists()]
    if existing:
        raise click.UsageError(f"refusing to overwrite {', '.join(existing)}")
    authority = ca.create_authority(name, now=datetime.now(UTC))
    write_private(files["root.key"], ca.key_pem(authority.root_key))
    write_private(files["intermediate.key"], ca.key_pem(authority.intermediate_key))
    files["root.pem"].write_bytes(ca.pem(authority.root))
    files["intermediate.pem"].write_bytes(ca.pem(authority.intermediate))
    files["chain.pem"].write_bytes(authority.chain_pem())
    click.echo(f"created {name} Root CA and Intermediate CA in {directory}")
    click.echo(f"SECOPS_CERTS_CA_CHAIN_FILE={files['chain.pem'].resolve()}")
    click.echo(f"SECOPS_CERTS_CA_KEY_FILE={files['intermediate.key'].resolve()}")
    click.echo("keep root.key offline: it is needed only to make a new intermediate", err=True)


@ca_group.command("issue-client")
@click.argument("name")
@click.option("--out", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--hours", type=click.FloatRange(0.1, 2160), default=24.0, show_default=True)
@click.option("--renew", is_flag=True, help="Only renew, and only once two thirds of the lifetime passed.")
def issue_client(name: str, directory: Path, hours: float, renew: bool) -> None:
    """Issue a client certificate for NAME into DIR/NAME.key and DIR/NAME.pem."""
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    if renew:
        try:
            current = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise click.UsageError(f"--renew needs a readable {cert_path} and {key_path} ({exc})") from None
        if not ca.renewal_due(current, datetime.now(UTC)):
            click.echo(f"not due: {cert_path} is renewed after two thirds of its lifetime")
            return
    else:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    body = {"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "profile": "client",
            "lifetime_hours": hours, "common_name": name, "sans": []}
    issued = Client().request("POST", "/v1/certs/ca/certificates", json=body)
    if not renew:
        write_private(key_path, ca.key_pem(key))
    tmp = cert_path.with_name(f".{cert_path.name}.tmp")
    tmp.write_text(issued["certificate"] + issued["chain"])
    os.replace(tmp, cert_path)
    click.echo(f"issued serial {issued['serial']} for {name}, valid until {issued['not_after']}: "
               f"{cert_path} (key {key_path})")


@ca_group.command("revoke")
@click.argument("serial")
@click.option("--reason", default="unspecified", show_default=True)
def revoke(serial: str, reason: str) -> None:
    """Revoke an issued certificate by its hex serial."""
    record = Client().request("POST", f"/v1/certs/ca/certificates/{serial}/revoke", json={"reason": reason})
    click.echo(f"revoked {record['serial']} ({record['common_name']})")
    sys.stdout.flush()


@ca_group.command("deploy")
@click.argument("name")
@click.option("--cn", "common_name", required=True, help="Common name of the certificate.")
@click.option("--san", "sans", multiple=True, required=True, help="DNS name or IP address (repeat).")
@click.option("--cert", "cert_path", required=True)
@click.option("--key", "key_path", required=True)
@click.option("--chain", "chain_path", help="Chain file (default: appended to --cert).")
@click.option("--reload", "reload_cmd", multiple=True, help="Reload hook argv, one word per option.")
@click.option("--endpoint", "target_id", help="Inventoried endpoint id that must serve it afterwards.")
@click.option("--hours", type=click.FloatRange(0.1, 2160), default=24.0, show_default=True)
@click.option("--reuse-key", is_flag=True, help="Renew with the deployed key (for pinned endpoints).")
def deploy(name: str, common_name: str, sans: tuple[str, ...], cert_path: str, key_path: str,
           chain_path: str | None, reload_cmd: tuple[str, ...], target_id: str | None, hours: float,
           reuse_key: bool) -> None:
    """Manage a certificate: issued by the internal CA, deployed, renewed at two thirds."""
    body = {"name": name, "common_name": common_name, "sans": list(sans), "cert_path": cert_path,
            "key_path": key_path, "chain_path": chain_path, "reload_argv": list(reload_cmd),
            "target_id": target_id, "lifetime_hours": hours, "reuse_key": reuse_key}
    row = Client().request("POST", "/v1/certs/ca/deployments", json=body)
    click.echo(f"deployment {row['id']} ({row['name']}): run 'secops certs ca renew' or wait for the "
               "certs.renew schedule")


@ca_group.command("update")
@click.argument("deployment_id")
@click.option("--cert", "cert_path", help="New certificate path.")
@click.option("--key", "key_path", help="New key path.")
@click.option("--chain", "chain_path", help="New chain path.")
@click.option("--no-chain", is_flag=True, help="Append the chain to --cert instead of a chain file.")
@click.option("--reload", "reload_cmd", multiple=True, help="New reload hook argv, one word per option.")
@click.option("--no-reload", is_flag=True, help="Remove the reload hook.")
@click.option("--enable/--disable", "enabled", default=None, help="Renew it, or leave it alone.")
@click.option("--dns-provider", help="DNS-01 provider plugin (secops.dns_providers; 'hook' is built in).")
@click.option("--dns-setting", "dns_settings", multiple=True, metavar="NAME=JSON",
              help="A setting of the DNS-01 provider (repeat); the value is JSON, else a string.")
def update(deployment_id: str, cert_path: str | None, key_path: str | None, chain_path: str | None,
           no_chain: bool, reload_cmd: tuple[str, ...], no_reload: bool, enabled: bool | None,
           dns_provider: str | None, dns_settings: tuple[str, ...]) -> None:
    """Change a managed certificate's paths, reload hook, DNS-01 provider or whether it is renewed."""
    if chain_path and no_chain or reload_cmd and no_reload:
        raise click.UsageError("--chain with --no-chain, or --reload with --no-reload")
    body: dict[str, object] = {k: v for k, v in {"cert_path": cert_path, "key_path": key_path,
                                                 "chain_path": chain_path, "enabled": enabled,
                                                 "acme_dns_provider": dns_provider}.items() if v is not None}
    if no_chain:
        body["chain_path"] = None
    if reload_cmd or no_reload:
        body["reload_argv"] = list(reload_cmd)
    if dns_settings:
        parsed: dict[str, object] = {}
        for item in dns_settings:
            name, sep, raw = item.partition("=")
            if not sep or not name:
                raise click.UsageError(f"--dns-setting {item!r}: expected NAME=VALUE")
            try:
                parsed[name] = json.loads(raw)
            except ValueError:
                parsed[name] = raw
        body["acme_dns_settings"] = parsed
    if not body:
        raise click.UsageError("nothing to change")
    row = Client().request("PATCH", f"/v1/certs/ca/deployments/{deployment_id}", json=body)
    click.echo(f"deployment {row['id']} ({row['name']}): {'enabled' if row['enabled'] else 'disabled'}, "
               f"status {row['status']}")


@ca_group.command("renew")
@click.option("--deployment", "ids", multiple=True, help="Only this deployment id (repeat).")
@click.option("--force", is_flag=True, help="Renew even when not due.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
def renew(ids: tuple[str, ...], force: bool, timeout: float) -> None:
    """Renew and deploy the due managed certificates now, and wait for the outcome."""
    client = Client()
    body: dict[str, object] = {"force": force}
    if ids:
        body["deployment_ids"] = list(ids)
    job = client.wait(client.request("POST", "/v1/certs/ca/renewals", json=body)["id"], timeout,
                      progress=True)
    result = job.get("result") or {}
    for deployment_id, status in (result.get("outcomes") or {}).items():
        detail = (result.get("errors") or {}).get(deployment_id)
        click.echo(f"{deployment_id}  {status}" + (f"  {detail}" if detail else ""))
    if job["status"] != "succeeded" or any(s in ("rolled_back", "refused")
                                           for s in (result.get("outcomes") or {}).values()):
        sys.exit(1)
