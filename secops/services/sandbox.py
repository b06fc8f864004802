"""Run a function on untrusted input in a forked child with CPU and memory limits.

Document extraction (PDF, Office, e-mail parsers) runs third-party code on hostile
input; a parser stuck in a loop or building a huge structure would otherwise hold a
worker for the job's whole time limit or exhaust its memory. The child gets
``RLIMIT_CPU`` (it is killed by SIGXCPU/SIGKILL past it) and ``RLIMIT_AS`` (allocations
past it fail with ``MemoryError``), computes, sends the pickled result through a pipe
and exits at once (``os._exit``: no atexit handlers, no flushing of inherited
connections). The parent kills the child if it is interrupted itself (a soft time
limit), so no child outlives its job.
"""

from __future__ import annotations

import os
import pickle  # noqa: S403 - the data comes from our own forked child
import resource
import signal
from collections.abc import Callable
from typing import TypeVar

from secops.errors import SecOpsError

T = TypeVar("T")


class LimitExceeded(SecOpsError):
    """The sandboxed call went past its CPU or memory limit (or died)."""

    title = "Resource limit exceeded"


def run_limited(fn: Callable[[], T], *, cpu_seconds: int, memory_bytes: int) -> T:
    """``fn()`` in a child limited to ``cpu_seconds`` of CPU and ``memory_bytes`` of
    address space; its exceptions are raised here (as :class:`LimitExceeded` for a
    ``MemoryError`` or a child killed by a signal)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_fd)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
            try:
                outcome: tuple[bool, object] = (True, fn())
            except MemoryError:
                outcome = (False, LimitExceeded("the memory limit was reached"))
            except Exception as exc:  # noqa: BLE001 - handed to the parent as it is
                outcome = (False, exc)
            try:
                payload = pickle.dumps(outcome)
            except Exception as exc:  # noqa: BLE001
                payload = pickle.dumps((False, LimitExceeded(f"unpicklable result: {exc!r}")))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        what = "CPU" if sig in (signal.SIGXCPU, signal.SIGKILL) else signal.Signals(sig).name
        raise LimitExceeded(f"the {what} limit was reached")
    if not payload:
        raise LimitExceeded("the sandboxed process failed")
    # Written by our own child (same user, same code): no privilege to gain through it.
    ok, value = pickle.loads(payload)  # noqa: S301  # nosec B301
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[no-any-return]
