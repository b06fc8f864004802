"""Real listeners on loopback for the certificate tests (threads, port 0)."""

from __future__ import annotations

import socket
import ssl
import tempfile
import threading
import warnings
from pathlib import Path

from tests.certs.pki import Issued


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.held: list[socket.socket] = []

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()
        for conn in self.held:
            conn.close()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                self.serve(conn)
            except (OSError, ssl.SSLError):
                conn.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class TlsServer(_Listener):
    """Serves ``leaf`` with ``chain`` (extra certificates sent after it) and closes."""

    def __init__(self, leaf: Issued, chain: tuple[Issued, ...] = (), *,
                 minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None) -> None:
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx.minimum_version = minimum or ssl.TLSVersion.TLSv1_2
            if maximum:
                self.ctx.maximum_version = maximum
        self.serve_certificate(leaf, chain)
        self.handshakes = 0

    def serve_certificate(self, leaf: Issued, chain: tuple[Issued, ...] = ()) -> None:
        """Serve ``leaf`` (with ``chain``) from the next connection on: a renewal in place."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "server.pem"
            path.write_bytes(leaf.pem + b"".join(c.pem for c in chain) + leaf.key_pem)
            self.ctx.load_cert_chain(str(path))

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        with self.ctx.wrap_socket(conn, server_side=True):
            self.handshakes += 1


class SilentServer(_Listener):
    """Accepts and never answers: the client's handshake must time out."""

    def serve(self, conn: socket.socket) -> None:
        self.held.append(conn)


class PlaintextServer(_Listener):
    """Answers every connection with an HTTP error in plaintext."""

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        finally:
            conn.close()


def closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FileTlsServer(_Listener):
    """Serves whatever ``cert_path`` and ``key_path`` hold, read again at every connection
    (like a server reloaded after each deployment)."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        super().__init__()
        self.cert_path, self.key_path = cert_path, key_path

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(3)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_path, self.key_path)
        with ctx.wrap_socket(conn, server_side=True):
            pass
