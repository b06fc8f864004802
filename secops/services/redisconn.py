"""The Redis client the security layer shares (rate limits, alert windows, counters).

One client per process and URL, with short socket timeouts: the rate limiter fails
closed, so a Redis that does not answer must turn into a quick 503, not a hung request.
Nothing connects at import time.
"""

from __future__ import annotations

import threading

import redis
from redis.commands.core import Script

from secops.config import get_settings
from secops.errors import Unavailable

SOCKET_TIMEOUT = 1.0
_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)


def get_redis(url: str | None = None) -> redis.Redis:
    url = url or get_settings().redis_url_value()
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT,
                                          socket_connect_timeout=SOCKET_TIMEOUT,
                                          health_check_interval=30)
            _clients[url] = client
    return client


def unavailable(what: str) -> Unavailable:
    return Unavailable(f"{what} is unavailable")


def lua_script(source: str) -> Script:
    """A Lua script run by its SHA-1 (``EVALSHA``), so its text is not sent with every
    call; redis-py loads it again when a server answers ``NOSCRIPT`` (after a restart,
    which empties the script cache of a Redis that keeps nothing on disk).

    Call it as ``script(keys=[...], args=[...], client=client)``.
    """
    # Bound to no client (each call names one); as bytes, its digest needs no encoder.
    return Script(None, source.encode())  # type: ignore[arg-type]
