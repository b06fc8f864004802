"""What a benchmark script does when it is told to stop."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP end the script as Ctrl-C does: its ``finally`` blocks and
    ``atexit`` handlers run, so the servers it started (API, workers, Redis) and their
    temporary stores go with it instead of being left running. By default these signals
    end Python at once, with neither."""

    def _exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)


@contextmanager
def thread_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool whose queued tasks are dropped when the block ends early (SIGTERM
    raises SystemExit in the main thread, see :func:`exit_on_termination`): only the
    tasks already running are waited for, not every one ``map`` queued."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
