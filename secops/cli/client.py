"""A small HTTP client for the commands that go through the API.

The API URL comes from ``SECOPS_API_URL`` (default: the configured API host and port);
the key from the secret reader (``SECOPS_API_KEY``, ``SECOPS_API_KEY_FILE``,
``/run/secrets/api_key``, or the admin key ``secops up`` saved in the data dir).
"""

from __future__ import annotations

import ssl
import sys
import time
from typing import Any

import click
import httpx

from secops.config import get_settings, read_secret

TERMINAL = {"succeeded", "failed", "cancelled"}


class ApiError(click.ClickException):
    exit_code = 2


def api_url() -> str:
    settings = get_settings()
    return settings.api_url or f"http://{settings.api_host}:{settings.api_port}"


class Client:
    def __init__(self, base_url: str | None = None, key: str | None = None) -> None:
        self.base_url = (base_url or api_url()).rstrip("/")
        secret = read_secret("api_key")
        token = key or (secret.get_secret_value() if secret else None)
        if not token:
            raise ApiError("no API key: set SECOPS_API_KEY or SECOPS_API_KEY_FILE")
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0,
                                  verify=_verify(self.base_url),
                                  headers={"Authorization": f"Bearer {token}"})

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the API at {self.base_url} ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise ApiError(_describe(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def wait(self, job_id: str, timeout: float, progress: bool) -> dict[str, Any]:
        """Poll a job until it finishes, drawing a one-line progress display on a terminal."""
        deadline = time.monotonic() + timeout
        delay, spin = 0.1, 0
        show = progress and sys.stderr.isatty()
        while True:
            job: dict[str, Any] = self.request("GET", f"/v1/jobs/{job_id}")
            if job["status"] in TERMINAL:
                if show:
                    click.echo("\r" + " " * 60 + "\r", err=True, nl=False)
                return job
            if time.monotonic() > deadline:
                raise ApiError(f"timed out waiting for job {job_id} (still {job['status']})")
            if show:
                frame = "|/-\\"[spin % 4]
                click.echo(f"\r{frame} {job['kind']} {job_id[:8]} {job['status']}"
                           f" (attempt {job['attempts']})", err=True, nl=False)
                spin += 1
            time.sleep(delay)
            delay = min(1.0, delay * 1.5)


def _verify(url: str) -> ssl.SSLContext | bool:
    """Certificate checks for the API URL: httpx's default trust store for ``https``.

    For plain ``http`` no trust store is loaded (loading one costs about 60 ms, a third
    of a small ``secops scan`` run's own CPU), and the context given instead verifies
    against no authority at all, so an unexpected TLS connection fails closed.
    """
    if url.lower().startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostname checked, no CAs


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"API answered {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    msg = f"API answered {response.status_code}: {detail or body}"
    for err in (body.get("errors") or [])[:5] if isinstance(body, dict) else []:
        msg += f"; {err.get('field')}: {err.get('message')}"
    return msg
