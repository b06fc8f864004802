"""``secops certs endpoints|files|scan|certificates``: the inventory through the API."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from secops.cli.client import Client


def _show_targets(items: list[dict[str, Any]], as_json: bool) -> None:
    for item in items:
        if as_json:
            click.echo(json.dumps(item))
            continue
        certs = item.get("certificates") or []
        expiry = f"{certs[0]['days_left']:.1f}d" if certs else "-"
        worst = sorted({f["severity"] for f in item.get("last_findings") or []})
        click.echo(f"{item['id']}  {item['key']:<40} {expiry:>8}  owner={item['owner'] or '-'}  "
                   f"tags={','.join(item['tags']) or '-'}  {' '.join(worst)}")


def _target_group(kind: str, plural: str) -> click.Group:
    @click.group(plural)
    def group() -> None:
        pass

    group.help = f"Watched certificate {plural} (through the API)."

    @group.command("list")
    @click.option("--tag")
    @click.option("--owner")
    @click.option("--json", "as_json", is_flag=True)
    def list_cmd(tag: str | None, owner: str | None, as_json: bool) -> None:
        params = {k: v for k, v in (("tag", tag), ("owner", owner)) if v}
        _show_targets(Client().request("GET", f"/v1/certs/{plural}", params=params)["items"], as_json)

    @group.command("show")
    @click.argument("target_id")
    @click.option("--history", is_flag=True, help="Every certificate it served, newest first.")
    def show(target_id: str, history: bool) -> None:
        client = Client()
        path = f"/v1/certs/{plural}/{target_id}" + ("/history" if history else "")
        click.echo(json.dumps(client.request("GET", path), indent=2))

    @group.command("rm")
    @click.argument("target_id")
    def rm(target_id: str) -> None:
        Client().request("DELETE", f"/v1/certs/{plural}/{target_id}")
        click.echo(f"removed {target_id}")

    @group.command("set")
    @click.argument("target_id")
    @click.option("--owner")
    @click.option("--tag", "tags", multiple=True, help="Replace the tags (repeat).")
    @click.option("--pin", "pins", multiple=True, help="Replace the pins (repeat).")
    @click.option("--enable/--disable", default=None)
    def set_cmd(target_id: str, owner: str | None, tags: tuple[str, ...], pins: tuple[str, ...],
                enable: bool | None) -> None:
        body: dict[str, Any] = {}
        if owner is not None:
            body["owner"] = owner
        if tags:
            body["tags"] = list(tags)
        if pins:
            body["pins"] = list(pins)
        if enable is not None:
            body["enabled"] = enable
        _show_targets([Client().request("PATCH", f"/v1/certs/{plural}/{target_id}", json=body)], False)

    return group


endpoints = _target_group("endpoint", "endpoints")
files = _target_group("file", "files")


@endpoints.command("add")
@click.argument("hostport", metavar="HOST[:PORT]")
@click.option("--sni")
@click.option("--owner")
@click.option("--tag", "tags", multiple=True)
@click.option("--pin", "pins", multiple=True, help="Accepted SPKI pin (pin-sha256); repeat for backups.")
@click.option("--json", "as_json", is_flag=True)
def add_endpoint(hostport: str, sni: str | None, owner: str | None, tags: tuple[str, ...],
                 pins: tuple[str, ...], as_json: bool) -> None:
    """Watch HOST[:PORT] (443 by default)."""
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        host, port = hostport, "443"
    body = {"host": host.strip("[]"), "port": int(port), "sni": sni, "owner": owner,
            "tags": list(tags), "pins": list(pins)}
    _show_targets([Client().request("POST", "/v1/certs/endpoints", json=body)], as_json)


@files.command("add")
@click.argument("path")
@click.option("--owner")
@click.option("--tag", "tags", multiple=True)
@click.option("--json", "as_json", is_flag=True)
def add_file(path: str, owner: str | None, tags: tuple[str, ...], as_json: bool) -> None:
    """Watch a certificate file or directory on the workers' file system."""
    body = {"path": path, "owner": owner, "tags": list(tags)}
    _show_targets([Client().request("POST", "/v1/certs/files", json=body)], as_json)


@click.command("scan")
@click.option("--target", "target_ids", multiple=True, help="Only this target id (repeat).")
@click.option("--tag", help="Only targets with this tag.")
@click.option("--wait", "wait_", is_flag=True, help="Wait for the job and print its summary.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
def scan(target_ids: tuple[str, ...], tag: str | None, wait_: bool, timeout: float) -> None:
    """Check the inventory now through a certs.scan job."""
    client = Client()
    body: dict[str, Any] = {}
    if target_ids:
        body["target_ids"] = list(target_ids)
    if tag:
        body["tag"] = tag
    job = client.request("POST", "/v1/certs/scans", json=body)
    if wait_:
        job = client.wait(job["id"], timeout, progress=True)
    click.echo(json.dumps(job))
    if job["status"] in ("failed", "cancelled"):
        sys.exit(1)


@click.command("certificates")
@click.option("--all", "all_", is_flag=True, help="Include certificates no longer served.")
@click.option("--expiring-within", type=float, help="Only those expiring within this many days.")
@click.option("--json", "as_json", is_flag=True)
def certificates(all_: bool, expiring_within: float | None, as_json: bool) -> None:
    """Certificates seen, soonest expiry first."""
    params: dict[str, Any] = {"current": str(not all_).lower(), "limit": 1000}
    if expiring_within is not None:
        params["expiring_within_days"] = expiring_within
    for item in Client().request("GET", "/v1/certs/certificates", params=params)["items"]:
        if as_json:
            click.echo(json.dumps(item))
        else:
            click.echo(f"{item['days_left']:>9.1f}d  {item['target']:<40} {item['subject']}  "
                       f"({item['issuer']})  {item['change']}")
