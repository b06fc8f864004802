"""The Celery application. Configuration is read lazily, when Celery first needs it."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from secops.config import get_settings
from secops.db.session import dispose_engines
from secops.logs import configure_logging
from tasks.routing import celery_config

app = Celery("secops", include=["tasks.system", "tasks.audit", "tasks.alerts", "tasks.scanning",
                                   "tasks.dlp"])
app.add_defaults(lambda: celery_config(get_settings()))


@worker_process_init.connect
def _fresh_engine_per_child(**_: Any) -> None:
    """Pooled connections must not cross a fork: each child opens its own."""
    dispose_engines()


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(get_settings().log_level)
