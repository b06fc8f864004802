"""``secops jobs``: submit, get, list and wait for jobs through the API."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from secops.cli.client import Client


def parse_params(pairs: tuple[str, ...], raw: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if raw:
        try:
            loaded = json.loads(raw)
        except json.JSONDecodeError:
            raise click.BadParameter("is not valid JSON", param_hint="--params") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params")
        params.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def show_job(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(job))
        return
    click.echo(f"job {job['id']}  {job['kind']}  {job['status']}  attempts={job['attempts']}")
    if job.get("error"):
        click.echo(f"error: {job['error']}")
    if job.get("result") is not None:
        click.echo(json.dumps(job["result"], indent=2))


def exit_for(job: dict[str, Any]) -> None:
    if job["status"] in ("failed", "cancelled"):
        sys.exit(1)


@click.group()
def jobs() -> None:
    """Submit jobs and read their results (through the API)."""


@jobs.command()
@click.argument("kind")
@click.option("--param", "pairs", multiple=True, metavar="KEY=VALUE",
              help="A parameter (VALUE parsed as JSON when it can be).")
@click.option("--params", "raw", metavar="JSON", help="All parameters as a JSON object.")
@click.option("--idempotency-key", default=None)
@click.option("--wait", "wait_", is_flag=True, help="Wait for the job to finish.")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def submit(kind: str, pairs: tuple[str, ...], raw: str | None, idempotency_key: str | None,
           wait_: bool, timeout: float, as_json: bool) -> None:
    """Submit a job of KIND (e.g. system.ping)."""
    client = Client()
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = client.request("POST", "/v1/jobs", json={"kind": kind, "params": parse_params(pairs, raw)},
                         headers=headers)
    if wait_:
        job = client.wait(job["id"], timeout, progress=not as_json)
    show_job(job, as_json)
    exit_for(job)


@jobs.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def get(job_id: str, as_json: bool) -> None:
    """Show a job and its result."""
    job = Client().request("GET", f"/v1/jobs/{job_id}")
    show_job(job, as_json)


@jobs.command()
@click.argument("job_id")
@click.option("--timeout", type=float, default=600.0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def wait(job_id: str, timeout: float, as_json: bool) -> None:
    """Wait for a job to finish; exit 1 if it failed or was cancelled."""
    job = Client().wait(job_id, timeout, progress=not as_json)
    show_job(job, as_json)
    exit_for(job)


@jobs.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
def cancel(job_id: str, as_json: bool) -> None:
    """Cancel a queued or running job."""
    show_job(Client().request("POST", f"/v1/jobs/{job_id}/cancel"), as_json)


@jobs.command("list")
@click.option("--kind")
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed",
                                             "cancelled"]))
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--json", "as_json", is_flag=True)
def list_jobs(kind: str | None, status: str | None, limit: int, offset: int,
              as_json: bool) -> None:
    """List jobs, newest first."""
    query = {k: v for k, v in {"kind": kind, "status": status, "limit": limit,
                               "offset": offset}.items() if v is not None}
    page = Client().request("GET", "/v1/jobs", params=query)
    if as_json:
        click.echo(json.dumps(page))
        return
    click.echo(f"{'ID':36}  {'KIND':20}  {'STATUS':9}  CREATED")
    for job in page["items"]:
        click.echo(f"{job['id']:36}  {job['kind']:20}  {job['status']:9}  {job['created_at']}")
    click.echo(f"{len(page['items'])} of {page['total']}")
