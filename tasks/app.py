"""The Celery application. Configuration is read lazily, when Celery first needs it.

A worker checks the secrets its jobs need (``WORKER_SECRETS``) as it starts
(``worker_init``, before it consumes anything) and exits with one line on stderr naming
the setting if one is missing or too short.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init, worker_process_init

from secops.config import OPTIONAL_KEYS, WORKER_SECRETS, get_settings
from secops.db.session import reset_pools_after_fork
from secops.errors import ConfigurationError
from secops.logs import configure_logging
from tasks.routing import celery_config

app = Celery("secops", include=["tasks.system", "tasks.audit", "tasks.alerts", "tasks.scanning",
                                   "tasks.dlp", "tasks.certs", "tasks.privacy", "tasks.anomaly",
                                   "tasks.compliance"])
app.add_defaults(lambda: celery_config(get_settings()))


@worker_init.connect
def _require_secrets(**_: Any) -> None:
    """Refuse to start a worker that would fail its jobs for want of a secret.

    SystemExit, not ConfigurationError: Celery logs and ignores a signal handler's
    Exception, while SystemExit stops the worker (one line on stderr, exit status 1).
    """
    try:
        settings = get_settings()
        webhook = ("alert_webhook_secret",) if settings.alert_webhook_url else ()
        settings.require_secrets(*WORKER_SECRETS, *webhook, optional=OPTIONAL_KEYS)
    except ConfigurationError as exc:
        raise SystemExit(f"secops worker: refusing to start: {exc.message}") from None


@worker_init.connect
def _declare_dead_letters(**_: Any) -> None:
    """RabbitMQ: the dead-letter exchange and queues exist before any job queue can
    dead-letter into them (RabbitMQ drops a dead letter whose exchange is missing)."""
    if not get_settings().broker_is_amqp():
        return
    from tasks import deadletter

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            deadletter.declare(connection)
    except Exception:  # noqa: BLE001 - the reaper declares them again on each run
        logging.getLogger("secops.tasks").warning("could not declare the dead-letter queues",
                                                   exc_info=True)


@worker_init.connect
def _warm_up_before_fork(**_: Any) -> None:
    """The main process prepares what every pool process needs before its first job
    (see tasks.base.warm_up)."""
    from tasks.base import warm_up

    warm_up()


@worker_process_init.connect
def _fresh_pool_per_child(**_: Any) -> None:
    """Pooled connections must not cross a fork: each child opens its own, with the
    engines (dialect, compiled statements) its parent prepared."""
    reset_pools_after_fork()


@worker_process_init.connect
def _connect_before_the_first_job(**_: Any) -> None:
    """Open the child's first database connection as it starts, so the first job it runs
    does not wait for the connection and the dialect's first queries; a database that is
    down is only logged here (the job's own session reports it, and retries)."""
    from secops.db.session import get_engine

    try:
        with get_engine().connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception:  # noqa: BLE001 - a warm-up: the first job connects again
        logging.getLogger("secops.tasks").warning("could not connect to the database at "
                                                   "worker start", exc_info=True)


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(get_settings().log_level)


def worker_count(timeout: float) -> int:
    """How many workers answer a ping within ``timeout`` seconds; 0 when the broker does
    not answer (readiness and the console's overview both report it as no workers)."""
    try:
        return len(app.control.ping(timeout=timeout) or [])
    except Exception as exc:  # noqa: BLE001 - an unreachable broker means no workers seen
        logging.getLogger("secops.tasks").info("worker ping failed",
                                               extra={"error": type(exc).__name__})
        return 0
