"""Celery layer: ``celery -A tasks worker|beat|flower``.

Tasks are thin: decode the job id, open a session, call one service, record the outcome.
"""

from tasks.app import app

__all__ = ["app"]
