"""``secops schedules``: recurring jobs, through the API; beat picks changes up live."""

from __future__ import annotations

import json
from typing import Any

import click

from secops.cli.client import Client
from secops.cli.jobs import parse_params


def _show(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(rows if len(rows) != 1 else rows[0]))
        return
    click.echo(f"{'ID':36}  {'NAME':20}  {'KIND':16}  {'WHEN':16}  {'ON':3}  NEXT")
    for s in rows:
        when = s["cron"] or f"every {s['interval_seconds']}s"
        click.echo(f"{s['id']:36}  {s['name'][:20]:20}  {s['kind'][:16]:16}  {when[:16]:16}  "
                   f"{'yes' if s['enabled'] else 'no':3}  {s.get('next_run_at') or '-'}")


@click.group()
def schedules() -> None:
    """Create, list, change and delete schedules."""


@schedules.command()
@click.option("--name", required=True)
@click.option("--kind", required=True)
@click.option("--cron", default=None, help="Five-field cron expression (UTC).")
@click.option("--every", "interval", type=click.IntRange(1), default=None, help="Interval, seconds.")
@click.option("--param", "pairs", multiple=True, metavar="KEY=VALUE")
@click.option("--params", "raw", metavar="JSON")
@click.option("--disabled", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def create(name: str, kind: str, cron: str | None, interval: int | None, pairs: tuple[str, ...],
           raw: str | None, disabled: bool, as_json: bool) -> None:
    """Create a schedule (give --cron or --every)."""
    if (cron is None) == (interval is None):
        raise click.UsageError("give exactly one of --cron or --every")
    body = {"name": name, "kind": kind, "params": parse_params(pairs, raw), "cron": cron,
            "interval_seconds": interval, "enabled": not disabled}
    _show([Client().request("POST", "/v1/schedules", json=body)], as_json)


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_schedules(as_json: bool) -> None:
    """List schedules."""
    rows = Client().request("GET", "/v1/schedules")
    if as_json:
        click.echo(json.dumps(rows))
    else:
        _show(rows, False)


@schedules.command()
@click.argument("schedule_id")
@click.option("--json", "as_json", is_flag=True)
def get(schedule_id: str, as_json: bool) -> None:
    """Show one schedule."""
    _show([Client().request("GET", f"/v1/schedules/{schedule_id}")], as_json)


@schedules.command()
@click.argument("schedule_id")
@click.option("--name")
@click.option("--cron")
@click.option("--every", "interval", type=click.IntRange(1))
@click.option("--params", "raw", metavar="JSON")
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--json", "as_json", is_flag=True)
def update(schedule_id: str, name: str | None, cron: str | None, interval: int | None,
           raw: str | None, enabled: bool | None, as_json: bool) -> None:
    """Change a schedule; beat uses the change within seconds."""
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if cron is not None:
        body["cron"] = cron
    if interval is not None:
        body["interval_seconds"] = interval
    if raw is not None:
        body["params"] = parse_params((), raw)
    if enabled is not None:
        body["enabled"] = enabled
    if not body:
        raise click.UsageError("nothing to change")
    _show([Client().request("PATCH", f"/v1/schedules/{schedule_id}", json=body)], as_json)


@schedules.command()
@click.argument("schedule_id")
def delete(schedule_id: str) -> None:
    """Delete a schedule."""
    Client().request("DELETE", f"/v1/schedules/{schedule_id}")
    click.echo(f"deleted {schedule_id}")
