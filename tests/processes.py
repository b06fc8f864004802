"""Start real platform processes (worker, beat, API) for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from secops.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT, stdout=self._fh,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20.0) -> None:
        self.kill(signal.SIGTERM)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill(signal.SIGKILL)
        self.p.wait()
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_worker(env: dict[str, str], log: Path, name: str = "w1", concurrency: int = 1,
                 queues: str = "default,scan,dlp,privacy,certs,anomaly,audit,system",
                 include: tuple[str, ...] = ()) -> Proc:
    """A worker; ``include`` names extra task modules it imports (test-only tasks)."""
    extra = [arg for module in include for arg in ("--include", module)]
    proc = Proc([sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO",
                 "-Q", queues, "--concurrency", str(concurrency), "--hostname",
                 f"{name}@%h", "--without-mingle", "--without-gossip", *extra], env, log)
    wait_for(lambda: "ready." in proc.output() or proc.p.poll() is not None, 60, "worker ready")
    assert proc.p.poll() is None, proc.output()[-3000:]
    return proc


def start_beat(env: dict[str, str], log: Path) -> Proc:
    return Proc([sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO"],
                env, log)


def start_api(env: dict[str, str], log: Path, prefix: tuple[str, ...] = ()) -> tuple[Proc, str]:
    """An API process; ``prefix`` runs it under another command (``prlimit ...``)."""
    port = free_port()
    proc = Proc([*prefix, sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-server-header"], env, log)
    import httpx

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.p.poll() is not None

    wait_for(up, 30, "API ready")
    assert proc.p.poll() is None, proc.output()[-3000:]
    return proc, f"http://127.0.0.1:{port}"


def use_broker() -> None:
    """Point this process's Celery app at the broker the settings name now."""
    from kombu import pools

    from secops.config import get_settings
    from tasks.app import app
    from tasks.routing import celery_config

    get_settings.cache_clear()
    app.pool.force_close_all()
    pools.reset()  # kombu keeps pools per URL: the closed ones must not be handed out again
    app._pool = None
    app.__dict__.pop("amqp", None)  # queues, router and producer pool are rebuilt from conf
    app.conf.update(celery_config(get_settings()))
