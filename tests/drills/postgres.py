"""A private PostgreSQL server for a drill that stops and starts its database (the shared
server of the test run must never be restarted). Run as the ``postgres`` user when the
tests run as root (the server refuses to run as root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from secops.embedded import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """``initdb`` into a fresh directory, then :meth:`start` / :meth:`stop` at will on one
    port; :meth:`destroy` stops it and removes its files."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or self._pg_ctl is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self._as: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="secops-drill-pg-"))
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                   "-E", "UTF8", "--no-instructions"])

    def _run(self, argv: list[str]) -> None:
        proc = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=120,
                              cwd=self.root, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=100")
        self._run([str(self._pg_ctl), "start", "-w", "-t", "60", "-D", str(self.data),
                   "-l", str(self.root / "server.log"), "-o", options])

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; ``immediate`` is a crash (recovery at the next start)."""
        self._run([str(self._pg_ctl), "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data)])

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop()
            except RuntimeError:
                time.sleep(1)
        shutil.rmtree(self.root, ignore_errors=True)
