"""``secops flower``: Flower behind basic auth whose credentials come from the secret reader.

The password is handed to Flower through its own ``FLOWER_BASIC_AUTH`` variable in the
exec'd process only, never on the command line (which any local user can read).
"""

from __future__ import annotations

import os
import sys

import click

from secops.config import get_settings


@click.command()
@click.option("--address", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port (default SECOPS_FLOWER_PORT, 5555).")
def flower(address: str, port: int | None) -> None:
    """Run Flower (the Celery monitor) with basic auth."""
    settings = get_settings()
    password = settings.secret("flower_password").get_secret_value()
    env = dict(os.environ, FLOWER_BASIC_AUTH=f"{settings.flower_user}:{password}")
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "flower", f"--address={address}",
            f"--port={port or settings.flower_port}"]
    os.execve(sys.executable, argv, env)  # noqa: S606 - our own interpreter, fixed arguments
