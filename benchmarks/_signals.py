"""What a benchmark script does when it is told to stop."""

from __future__ import annotations

import signal
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
