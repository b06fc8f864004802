"""``secops up``: the whole platform on one machine, with no set-up.

Migrates the database, generates missing secrets, starts an embedded Redis unless
``SECOPS_REDIS_URL`` is set, creates and prints an admin key on the first run (saved to
a 0600 file in the data dir), then runs and supervises the API, a worker, beat and
Flower until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from secops.config import get_settings, read_secret
from secops.db.migrate import upgrade
from secops.db.session import session_scope
from secops.embedded import EmbeddedRedis, ensure_generated_secrets, write_private
from secops.kinds import HEAVY_QUEUES, LIGHT_PREFETCH, LIGHT_QUEUES
from secops.logs import configure_logging
from secops.services import audit
from secops.services import keys as key_service
from secops.supervisor import Child, Supervisor


def api_command(python: str, host: str, port: int, processes: int) -> list[str]:
    """The API's command line. Uvicorn's own proxy-header handling is off (by default it
    believes ``X-Forwarded-For`` from 127.0.0.1, so any local client could pick its
    address): the application reads forwarded headers itself, from
    ``SECOPS_TRUSTED_PROXIES`` only."""
    return [python, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
            "--host", host, "--port", str(port), "--workers", str(processes),
            "--no-server-header", "--no-proxy-headers", "--log-level", "warning"]


def _first_admin_key(secrets_dir: Path) -> str | None:
    with session_scope() as session:
        if key_service.has_admin_key(session=session):
            return None
        issued = key_service.create_key(session=session, name="initial admin", role="admin",
                                        created_by="secops up")
        audit.record(session=session, ctx=audit.AuditContext(actor="secops up"),
                     action="keys.create", target=f"key:{issued.record.id}",
                     details={"role": "admin", "name": "initial admin", "first_run": True})
    write_private(secrets_dir / "api_key", issued.plaintext)
    return issued.plaintext


@click.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Pool processes of each worker (one for light queues, one for heavy).")
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
def up(concurrency: int, no_flower: bool) -> None:
    """Run API, worker, beat and Flower on the embedded defaults (SQLite, embedded Redis)."""
    data_dir = get_settings().data_dir.resolve()
    os.environ["SECOPS_DATA_DIR"] = str(data_dir)  # children and the secret reader agree on it
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets_dir = data_dir / "secrets"
    created = ensure_generated_secrets(secrets_dir)
    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(settings.log_level)
    upgrade()
    redis_server = None
    env = dict(os.environ)
    if read_secret("redis_url", embedded=False) is None:
        password = secrets_dir / "redis_password"
        if not password.exists():
            write_private(password, os.urandom(24).hex())
        redis_server = EmbeddedRedis(data_dir, password.read_text().strip())
        redis_server.start()
        write_private(secrets_dir / "redis_url", redis_server.url)
        env["SECOPS_REDIS_URL_FILE"] = str(secrets_dir / "redis_url")
        env.pop("SECOPS_REDIS_URL", None)
    if created:
        click.echo(f"generated secrets in {secrets_dir}: {', '.join(created)}", err=True)
    admin_key = _first_admin_key(secrets_dir)
    if admin_key:
        click.echo("first run: an admin API key was created. It is shown once and saved "
                   f"(mode 0600) to {secrets_dir / 'api_key'}:")
        click.echo(admin_key)
    python = sys.executable
    # The embedded Redis is supervised like the rest: restarted on the same port,
    # password and data if it dies, stopped after the processes that use it.
    supervised_redis = ([Child("redis", redis_server.argv, env, process=redis_server.process,
                               stop_last=True)] if redis_server is not None else [])
    children = [
        *supervised_redis,
        Child("api", api_command(python, settings.api_host, settings.api_port,
                                 settings.api_processes), env),
        Child("worker", [python, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
                         "-Q", ",".join(LIGHT_QUEUES), "--concurrency", str(concurrency),
                         "--prefetch-multiplier", str(LIGHT_PREFETCH),
                         "--hostname", f"light@{os.uname().nodename}"], env),
        Child("heavy-worker", [python, "-m", "celery", "-A", "tasks", "worker", "--loglevel",
                               "INFO", "-Q", ",".join(HEAVY_QUEUES), "--concurrency",
                               str(concurrency), "--prefetch-multiplier", "1",
                               "--hostname", f"heavy@{os.uname().nodename}"], env),
        Child("beat", [python, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO"], env),
    ]
    if not no_flower:
        children.append(Child("flower", [python, "-m", "secops.cli", "flower",
                                         "--address", "127.0.0.1"], env))
    click.echo(f"API on http://{settings.api_host}:{settings.api_port}"
               + ("" if no_flower else f", Flower on http://127.0.0.1:{settings.flower_port} "
                  f"(user {settings.flower_user}, password in {secrets_dir / 'flower_password'})")
               + "; Ctrl-C stops everything", err=True)
    try:
        code = Supervisor(children, grace=settings.shutdown_grace).run()
    finally:
        if redis_server is not None:
            redis_server.stop()
    sys.exit(code)
