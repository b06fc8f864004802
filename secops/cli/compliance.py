"""``secops compliance report``: the compliance matrix from live checks, as Markdown or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from secops.compliance import to_markdown
from secops.db.session import session_scope
from secops.errors import SecOpsError
from secops.services import compliance
from secops.services.redisconn import get_redis


@click.group("compliance")
def compliance_group() -> None:
    """SOC 2, ISO 27001 and GDPR controls, evaluated from the running system."""


@compliance_group.command()
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of standard output.")
@click.option("--api-url", default=None, help="Where to probe the API's headers "
              "(default SECOPS_API_URL, the console origin, or the API's host and port).")
def report(fmt: str, output: Path | None, api_url: str | None) -> None:
    """Evaluate every control now and print the report; exit 1 if a control fails."""
    try:
        kv = get_redis()
    except SecOpsError:
        kv = None
    with session_scope() as session:
        result = compliance.evaluate(session=session, kv=kv, api_url=api_url)
    text = json.dumps(result, indent=2) + "\n" if fmt == "json" else to_markdown(result)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    if result["overall"]["fail"]:
        raise SystemExit(1)
