"""A private RabbitMQ node for a drill that kills its broker (the shared server of the
test run must never be killed): its own node name, ports, data and Erlang cookie under a
temporary directory, so it can be SIGKILLed and started again on the same port and data."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from secops.embedded import free_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class PrivateRabbitMQ:
    """:meth:`start` / :meth:`kill` at will on one port; :meth:`destroy` removes it all."""

    def __init__(self) -> None:
        if not os.access(SERVER, os.X_OK):
            pytest.skip("rabbitmq-server is not installed")
        self.root = Path(tempfile.mkdtemp(prefix="secops-drill-rabbitmq-"))
        self.port, self.dist_port = free_port(), free_port()
        self.node = f"secops_drill_{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://127.0.0.1:{self.port}//"  # the default guest user
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        self.process: subprocess.Popen[bytes] | None = None

    def _env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.root), "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
                "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.root / "log"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
                "RABBITMQ_PID_FILE": str(self.root / "pid")}

    def start(self, timeout: float = 90) -> None:
        log = (self.root / "server.out").open("ab")
        self.process = subprocess.Popen([SERVER], env=self._env(), stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("rabbitmq-server exited: "
                                   + (self.root / "server.out").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"rabbitmq-server did not listen within {timeout:g} s")

    def kill(self) -> None:
        """SIGKILL the node (its whole process group): a crash, nothing flushed on the way."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        self.process = None
        deadline = time.monotonic() + 30  # the port is free again before a restart
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.2)
            except OSError:
                return

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
