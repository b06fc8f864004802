"""Run and supervise the platform's processes for ``secops up``.

Each child (the embedded Redis, API, worker, beat, Flower) starts in its own session,
so its whole process group (a Celery worker's pool children included) can be signalled
at once. A child that dies is restarted with backoff (the embedded Redis on the same
port, password and data: its configuration file does not change); one that keeps dying
stops the platform. On SIGINT or SIGTERM every group gets SIGTERM (and SIGCONT, so a
stopped process can act on it), then SIGKILL after a grace period; children marked
``stop_last`` (Redis) are stopped after the others, which may still need them to finish
cleanly. Nothing is left behind, whatever state a child is in.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess  # noqa: S404 - we start our own Python entry points with fixed arguments
import time
from dataclasses import dataclass, field
from types import FrameType

log = logging.getLogger("secops.up")
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None  # set: already started by the caller
    restarts: list[float] = field(default_factory=list)
    stop_last: bool = False

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
            self.argv, env=self.env, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.info("started", extra={"component": self.name, "pid": self.process.pid})

    def signal_group(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, children: list[Child], grace: float = 20.0) -> None:
        self.children = children
        self.grace = grace
        self._stop = False
        self.exit_code = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        self._stop = True

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.children:
                if child.process is None:
                    child.start()
            while not self._stop:
                time.sleep(0.2)
                self._watch()
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self.exit_code

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.alive() or self._stop:
                continue
            code = child.process.returncode if child.process else None
            child.signal_group(signal.SIGKILL)  # reap any orphans of the dead leader
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW]
            if len(child.restarts) >= MAX_RESTARTS:
                log.error("keeps dying; stopping the platform",
                          extra={"component": child.name, "exit_code": code})
                self.exit_code = 1
                self._stop = True
                return
            child.restarts.append(now)
            log.warning("exited; restarting", extra={"component": child.name, "exit_code": code})
            time.sleep(min(5.0, 0.5 * 2 ** len(child.restarts)))
            child.start()

    def stop_all(self) -> None:
        first = [c for c in self.children if not c.stop_last]
        for group in (first, [c for c in self.children if c.stop_last]):
            self._stop_group(group)

    def _stop_group(self, children: list[Child]) -> None:
        for child in children:
            child.signal_group(signal.SIGTERM)
            child.signal_group(signal.SIGCONT)
        deadline = time.monotonic() + self.grace
        for child in children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("did not stop in time; killing", extra={"component": child.name})
        for child in children:
            child.signal_group(signal.SIGKILL)  # whatever is left of each group
            if child.process is not None and child.process.poll() is None:
                child.process.wait()
