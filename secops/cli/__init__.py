"""The ``secops`` command.

Exit codes: 0 ok; 1 the job or check failed (or findings, for the local engines);
2 usage, configuration or connection error. Errors are one line on stderr, never a
traceback.
"""

from __future__ import annotations

import sys

import click

from secops import __version__
from secops.errors import SecOpsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="secops")
def cli() -> None:
    """SecOps: security operations as background jobs."""


def _register() -> None:
    from secops.cli import db, jobs, keys, schedules, up

    cli.add_command(up.up)
    cli.add_command(db.db)
    cli.add_command(keys.keys)
    cli.add_command(jobs.jobs)
    cli.add_command(schedules.schedules)
    for module, name in (("secops.cli.scan", "scan"), ("secops.cli.dlp", "dlp")):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        cli.add_command(getattr(mod, name))


_register()


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except SecOpsError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
