"""Debian's pebble ACME server on loopback, with a TLS certificate made here."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.certs.pki import Pki


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Pebble:
    directory: str
    root: Path
    http_port: int
    log: Path
    tls_cert: Path
    tls_key: Path


@contextmanager
def pebble(tmp: Path, *, always_valid: bool = False, dns_server: str | None = None) -> Iterator[Pebble]:
    binary = shutil.which("pebble")
    if binary is None:
        pytest.skip("Debian's pebble package is not installed (scripts/bootstrap.sh installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    pki = Pki.create("Pebble TLS")
    leaf = pki.leaf("localhost", sans=("localhost", "127.0.0.1"))
    (tmp / "cert.pem").write_bytes(leaf.pem + pki.intermediate.pem)
    (tmp / "key.pem").write_bytes(leaf.key_pem)
    (tmp / "root.pem").write_bytes(pki.root.pem)
    port, http_port = free_port(), free_port()
    config = {"pebble": {"listenAddress": f"127.0.0.1:{port}",
                         "managementListenAddress": f"127.0.0.1:{free_port()}",
                         "certificate": str(tmp / "cert.pem"), "privateKey": str(tmp / "key.pem"),
                         "httpPort": http_port, "tlsPort": free_port(), "ocspResponderURL": "",
                         "externalAccountBindingRequired": False}}
    (tmp / "pebble.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0",
           "PEBBLE_VA_ALWAYS_VALID": "1" if always_valid else "0"}
    log = tmp / "pebble.log"
    with log.open("wb") as out:
        extra = ["-dnsserver", dns_server] if dns_server else []
        proc = subprocess.Popen([binary, "-config", str(tmp / "pebble.json"), "-strict=false", *extra],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    directory = f"https://127.0.0.1:{port}/dir"
    trust = ssl.create_default_context(cafile=str(tmp / "root.pem"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(directory, verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"pebble did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Pebble(directory, tmp / "root.pem", http_port, log, tmp / "cert.pem", tmp / "key.pem")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
