"""``secops suppressions``: mark findings not sensitive or false positives, through the API.

``dlp FINDING_ID`` suppresses a DLP finding's value (the id is in ``GET
/v1/dlp/scans/{id}``); ``detector TYPE --path PATTERN`` a detector on matching files;
``scan SCAN_ID [--rule RULE]`` a scan's findings for that content. ``list``, ``revoke``,
and (admin) ``export`` / ``import`` of a baseline file. Each change is audited.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from secops.cli.client import Client

_common = [
    click.option("--reason", required=True, help="Why this is not a problem (audited)."),
    click.option("--expires", "expires", metavar="DATE|Nd",
                 help="When it stops applying: an ISO 8601 date or a number of days (30d)."),
]


def _with_common(func: Any) -> Any:
    for option in reversed(_common):
        func = option(func)
    return func


def _expiry(value: str | None) -> str | None:
    if value is None:
        return None
    if value.endswith("d") and value[:-1].isdigit():
        return (datetime.now(UTC) + timedelta(days=int(value[:-1]))).isoformat()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("give an ISO 8601 date or a number of days (30d)",
                                 param_hint="--expires") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def _create(body: dict[str, Any], reason: str, expires: str | None, as_json: bool) -> None:
    body = {k: v for k, v in {**body, "reason": reason, "expires_at": _expiry(expires)}.items()
            if v is not None}
    _show([Client().request("POST", "/v1/suppressions", json=body)], as_json)


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    for row in rows:
        what = row["detector"] or "all rules"
        if row["family"] == "scan":
            what = f"{what} on {row['sha256'][:16]}"
        elif row["by_value"]:
            what = f"{what} (one value)"
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        click.echo(f"{row['id']}  {row['family']:<4} {state:<8} {what}"
                   f"{'  path ' + row['path_pattern'] if row['path_pattern'] else ''}"
                   f"  until {row['expires_at'] or 'revoked'}  by {row['created_by']}: {row['reason']}")


@click.group("suppressions")
def suppressions() -> None:
    """Mark DLP findings not sensitive and scan verdicts false positives (through the API)."""


@suppressions.command("dlp")
@click.argument("finding_id", type=click.IntRange(1))
@click.option("--path", "path_pattern", help="Only on files whose name matches this pattern.")
@_with_common
@click.option("--json", "as_json", is_flag=True)
def dlp_cmd(finding_id: int, path_pattern: str | None, reason: str, expires: str | None,
            as_json: bool) -> None:
    """Mark the value of DLP finding FINDING_ID not sensitive (for its detector)."""
    _create({"dlp_finding_id": finding_id, "path_pattern": path_pattern}, reason, expires, as_json)


@suppressions.command("detector")
@click.argument("detector")
@click.option("--path", "path_pattern", required=True,
              help="Files whose name matches this pattern (e.g. 'tests/fixtures/*').")
@_with_common
@click.option("--json", "as_json", is_flag=True)
def detector_cmd(detector: str, path_pattern: str, reason: str, expires: str | None,
                 as_json: bool) -> None:
    """Switch DLP detector DETECTOR off on files matching --path."""
    _create({"detector": detector, "path_pattern": path_pattern}, reason, expires, as_json)


@suppressions.command("scan")
@click.argument("scan_id")
@click.option("--rule", "rule_id", help="Only this rule's findings (default: all of them).")
@click.option("--path", "path_pattern", help="Only on files whose name matches this pattern.")
@_with_common
@click.option("--json", "as_json", is_flag=True)
def scan_cmd(scan_id: str, rule_id: str | None, path_pattern: str | None, reason: str,
             expires: str | None, as_json: bool) -> None:
    """Mark scan SCAN_ID's verdict a false positive for that content."""
    _create({"scan_id": scan_id, "rule_id": rule_id, "path_pattern": path_pattern}, reason,
            expires, as_json)


@suppressions.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired and revoked ones.")
@click.option("--family", type=click.Choice(["dlp", "scan"]))
@click.option("--json", "as_json", is_flag=True)
def list_cmd(show_all: bool, family: str | None, as_json: bool) -> None:
    """Suppressions in force (or all), newest first."""
    params: dict[str, Any] = {"all": str(show_all).lower()}
    if family:
        params["family"] = family
    _show(Client().request("GET", "/v1/suppressions", params=params), as_json)


@suppressions.command("revoke")
@click.argument("suppression_id")
@click.option("--json", "as_json", is_flag=True)
def revoke_cmd(suppression_id: str, as_json: bool) -> None:
    """Revoke a suppression (the record stays)."""
    _show([Client().request("DELETE", f"/v1/suppressions/{suppression_id}")], as_json)


@suppressions.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
def export_cmd(output: str | None) -> None:
    """Write the suppressions in force as a baseline file (admin)."""
    body = Client().request("GET", "/v1/suppressions/baseline")
    text = json.dumps(body, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)


@suppressions.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
def import_cmd(file: str) -> None:
    """Add a baseline file's entries as suppressions (admin; all or nothing)."""
    try:
        with open(file, encoding="utf-8") as handle:
            body = json.load(handle)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"{file}: not a readable JSON file ({type(exc).__name__})") from None
    counts = Client().request("POST", "/v1/suppressions/baseline", json=body)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))
