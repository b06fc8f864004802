"""Real peers around pebble: pebble-challtestsrv (the DNS server pebble asks for DNS-01),
a web server serving a webroot (HTTP-01 by files), and an HTTPS reverse proxy that
answers the first new order with ``429 rateLimited`` and ``Retry-After`` (pebble itself
has no rate limits), then forwards everything to pebble unchanged."""

from __future__ import annotations

import base64
import functools
import http.client
import http.server
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs.pebble import Pebble, free_port


@dataclass
class ChallTestSrv:
    dns: str  # host:port pebble resolves with
    management: str  # http://host:port


@contextmanager
def challtestsrv(log: Path) -> Iterator[ChallTestSrv]:
    binary = shutil.which("pebble-challtestsrv")
    if binary is None:
        pytest.skip("pebble-challtestsrv (Debian's pebble package) is not installed")
    dns, management = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-dns01", dns, "-http01", "", "-https01", "", "-tlsalpn01", "",
                                 "-management", management, "-defaultIPv6", ""],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.post(f"http://{management}/clear-txt", json={"host": "probe.invalid."}, timeout=1)
                break
            except httpx.HTTPError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"challtestsrv did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        yield ChallTestSrv(dns, f"http://{management}")
    finally:
        proc.terminate()
        proc.wait(5)


@dataclass
class Requests:
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status

    orders: list[dict[str, Any]] = field(default_factory=list)  # newOrder payloads

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.seen if m == method and p == path)


@contextmanager
def webroot_server(root: Path, port: int) -> Iterator[Requests]:
    """python's http.server serving ``root`` on 127.0.0.1:port, recording each request."""
    log = Requests()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            log.seen.append((self.command, self.path, int(code)))

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                             functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield log
    finally:
        server.shutdown()
        server.server_close()


RATE_LIMITED = {"type": "urn:ietf:params:acme:error:rateLimited", "status": 429,
                "detail": "too many new orders recently"}


@dataclass
class Proxy:
    directory: str
    log: Requests
    # when set, the directory offers renewalInfo and GET /renewal-info/<certID> answers
    # this body with ``Retry-After: 3600`` (pebble 2.4 has no ARI)
    renewal_info: dict[str, Any] | None = None


@contextmanager
def rate_limiting_proxy(peb: Pebble, *, retry_after: int) -> Iterator[Proxy]:
    """An HTTPS proxy for pebble (same certificate) that refuses the first ``newOrder`` with
    429 and ``Retry-After``, and can add ARI to pebble's directory."""
    upstream = peb.directory.split("/")[2]
    host, _, port = upstream.partition(":")
    upstream_tls = ssl.create_default_context(cafile=str(peb.root))
    log = Requests()
    refused = threading.Event()
    proxy = Proxy("", log)

    def answer(handler: http.server.BaseHTTPRequestHandler, status: int, payload: bytes,
               headers: list[tuple[str, str]]) -> None:
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
        log.seen.append((handler.command, handler.path, status))

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "POST" and self.path == "/order-plz":
                payload = json.loads(body)["payload"]
                log.orders.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
            if self.command == "POST" and self.path == "/order-plz" and not refused.is_set():
                refused.set()
                answer(self, 429, json.dumps(RATE_LIMITED).encode(),
                       [("Content-Type", "application/problem+json"), ("Retry-After", str(retry_after))])
                return
            if self.path.startswith("/renewal-info/") and proxy.renewal_info is not None:
                answer(self, 200, json.dumps(proxy.renewal_info).encode(),
                       [("Content-Type", "application/json"), ("Retry-After", "3600")])
                return
            conn = http.client.HTTPSConnection(host, int(port), context=upstream_tls, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            conn.request(self.command, self.path, body=body or None, headers=headers)  # Host kept
            reply = conn.getresponse()
            data = reply.read()
            conn.close()
            if self.path == "/dir" and proxy.renewal_info is not None:
                data = json.dumps({**json.loads(data),
                                   "renewalInfo": f"https://{self.headers['Host']}/renewal-info"}).encode()
            answer(self, reply.status, data, [
                (name, value) for name, value in reply.getheaders()
                if name.lower() not in ("transfer-encoding", "connection", "content-length")])

        do_GET = do_POST = do_HEAD = _forward  # noqa: N815 - http.server's names

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(peb.tls_cert, peb.tls_key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.directory = f"https://127.0.0.1:{server.server_address[1]}/dir"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
