"""Deploying a certificate and key to disk, with a reload hook and rollback.

:meth:`Deployer.deploy` checks that the key belongs to the certificate, keeps the
previous files as ``<name>.previous``, writes the new key (mode 0600), certificate and
chain atomically (a temporary file in the same directory, fsync, rename), runs the
reload hook (an argv list, never a shell) and then, when an endpoint is given, handshakes
with it until it serves the new certificate. If the hook fails (non-zero exit, timeout,
not found) or the endpoint keeps serving something else, the previous files are put
back, the hook runs again so the service returns to them, and the result says
``rolled_back`` with the reason. A first deployment has nothing to return to: its new
files are removed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from secops.certs.model import CertsError
from secops.certs.tls import Endpoint, EndpointError, TlsProber

PREVIOUS = ".previous"


@dataclass(frozen=True)
class DeploySpec:
    cert_path: Path
    key_path: Path
    chain_path: Path | None = None  # None: the chain is appended to the certificate file
    reload_argv: tuple[str, ...] = ()
    verify: Endpoint | None = None
    hook_timeout: float = 60.0
    verify_attempts: int = 10
    verify_interval: float = 0.5


@dataclass
class DeployResult:
    status: str  # deployed | rolled_back
    fingerprint: str
    reason: str | None = None
    served: str | None = None  # fingerprint the endpoint served at the check
    hook_output: str = ""
    steps: list[str] = field(default_factory=list)


def _spki(obj: object) -> bytes:
    return obj.public_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data``: never a half-written file, created with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Deployer:
    def __init__(self, prober: TlsProber | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.prober = prober
        self.sleep = sleep

    def deploy(self, spec: DeploySpec, cert_pem: bytes, key_pem: bytes,
               chain_pem: bytes = b"") -> DeployResult:
        cert = _check_pair(cert_pem, key_pem)
        fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        files = self._files(spec, cert_pem, key_pem, chain_pem)
        result = DeployResult("deployed", fingerprint)
        saved = self._keep_previous(files)
        for path, (data, mode) in files.items():
            write_atomic(path, data, mode)
        result.steps.append("written")
        failure = self._reload(spec, result)
        if failure is None and spec.verify is not None:
            failure = self._verify(spec, fingerprint, result)
        if failure is None:
            return result
        result.status, result.reason = "rolled_back", failure
        self._restore(files, saved)
        result.steps.append("restored")
        if self._reload(spec, result) is not None:
            result.reason = f"{failure}; the reload hook also failed after the rollback"
        return result

    @staticmethod
    def _files(spec: DeploySpec, cert_pem: bytes, key_pem: bytes, chain_pem: bytes
               ) -> dict[Path, tuple[bytes, int]]:
        files = {spec.key_path: (key_pem, 0o600)}
        if spec.chain_path is None:
            files[spec.cert_path] = (cert_pem + chain_pem, 0o644)
        else:
            files[spec.cert_path] = (cert_pem, 0o644)
            files[spec.chain_path] = (chain_pem, 0o644)
        if len({p.resolve() for p in files}) != len(files):
            raise CertsError("the key, certificate and chain paths must differ")
        return files

    @staticmethod
    def _keep_previous(files: dict[Path, tuple[bytes, int]]) -> dict[Path, bool]:
        saved = {}
        for path, (_, mode) in files.items():
            if path.is_file():
                write_atomic(path.with_name(path.name + PREVIOUS), path.read_bytes(), mode)
                saved[path] = True
            else:
                saved[path] = False
        return saved

    @staticmethod
    def _restore(files: dict[Path, tuple[bytes, int]], saved: dict[Path, bool]) -> None:
        for path, (_, mode) in files.items():
            if saved[path]:
                write_atomic(path, path.with_name(path.name + PREVIOUS).read_bytes(), mode)
            else:
                path.unlink(missing_ok=True)

    def _reload(self, spec: DeploySpec, result: DeployResult) -> str | None:
        if not spec.reload_argv:
            return None
        try:
            done = subprocess.run(list(spec.reload_argv), shell=False, capture_output=True,  # noqa: S603
                                  timeout=spec.hook_timeout, check=False, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return f"the reload hook {spec.reload_argv[0]!r} was not found"
        except subprocess.TimeoutExpired:
            return f"the reload hook did not finish within {spec.hook_timeout:g} s"
        except OSError as exc:
            return f"the reload hook could not run ({exc.strerror})"
        result.hook_output = (done.stdout + done.stderr).decode("utf-8", "replace")[-2000:]
        result.steps.append(f"hook exit {done.returncode}")
        if done.returncode != 0:
            return f"the reload hook exited with status {done.returncode}"
        return None

    def _verify(self, spec: DeploySpec, fingerprint: str, result: DeployResult) -> str | None:
        assert spec.verify is not None
        prober = self.prober or TlsProber(timeout=5.0, probe_weak=False)
        last = "no handshake"
        for attempt in range(max(1, spec.verify_attempts)):
            if attempt:
                self.sleep(spec.verify_interval)
            try:
                served = prober.handshake(spec.verify)
            except EndpointError as exc:
                last = f"no handshake ({exc})"
                continue
            result.served = hashlib.sha256(served.chain[0]).hexdigest()
            if result.served == fingerprint:
                result.steps.append("verified")
                return None
            last = f"it serves another certificate (sha256 {result.served[:16]}...)"
        return f"after the reload, {spec.verify.label}: {last}"


def _check_pair(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise CertsError("the certificate or key is not valid PEM") from None
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise CertsError("the private key does not belong to the certificate")
    return cert
