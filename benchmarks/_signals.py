"""What a benchmark script does when it is told to stop."""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP end the script as Ctrl-C does: its ``finally`` blocks and
    ``atexit`` handlers run, so the servers it started (API, workers, Redis) and their
    temporary stores go with it instead of being left running. By default these signals
    end Python at once, with neither."""

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)


def concurrently(workers: int, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]`` on ``workers`` threads, the results in order (the
    first error is raised once the threads have stopped).

    Made for scripts that SIGTERM may stop (see :func:`exit_on_termination`): the threads
    take one item at a time from a shared counter and stop taking any once the main
    thread leaves, so only the items in hand are waited for; and the main thread only
    sleeps and looks whether they are alive, so the SystemExit the signal raises there
    never lands while it holds a lock the threads need (raised inside a thread pool's
    submit or a future's wait, it can leave such a lock taken, and the threads and the
    script then wait for ever)."""
    todo = list(items)
    results: list[Any] = [None] * len(todo)
    errors: list[BaseException] = []
    taken = itertools.count()
    stop = False

    def work() -> None:
        nonlocal stop
        while not stop:
            i = next(taken)   # (one C call: atomic under the GIL)
            if i >= len(todo):
                return
            try:
                results[i] = fn(todo[i])
            except BaseException as exc:  # noqa: BLE001 - raised by the caller below
                errors.append(exc)
                stop = True

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.02)
    finally:
        stop = True
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.02)
    if errors:
        raise errors[0]
    return results
