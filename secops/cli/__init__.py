"""The ``secops`` command.

Exit codes: 0 ok; 1 the job or check failed (or findings, for the local engines);
2 usage, configuration or connection error. Errors are one line on stderr, never a
traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from secops import __version__
from secops.errors import SecOpsError

COMMANDS = {
    "up": "secops.cli.up:up",
    "flower": "secops.cli.flower:flower",
    "db": "secops.cli.db:db",
    "keys": "secops.cli.keys:keys",
    "jobs": "secops.cli.jobs:jobs",
    "schedules": "secops.cli.schedules:schedules",
    "audit": "secops.cli.audit:audit",
    "scan": "secops.cli.scan:scan",
    "dlp": "secops.cli.dlp:dlp",
    "retention": "secops.cli.retention:retention",
    "certs": "secops.cli.certs:certs",
    "privacy": "secops.cli.privacy:privacy",
    "anomaly": "secops.cli.anomaly:anomaly",
    "users": "secops.cli.users:users",
    "compliance": "secops.cli.compliance:compliance_group",
    "suppressions": "secops.cli.suppressions:suppressions",
}


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs, so ``secops jobs`` starts fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="secops")
def cli() -> None:
    """SecOps: security operations as background jobs."""


# True only when this interpreter is the ``secops`` command (not a caller embedding the
# commands, such as a test runner): forking worker processes is safe only then, because
# an embedding process may hold broker or database connections a child must not touch.
RUNNING_AS_COMMAND = False


def main() -> None:
    global RUNNING_AS_COMMAND
    RUNNING_AS_COMMAND = True
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
