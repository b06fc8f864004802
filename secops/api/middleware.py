"""The outermost ASGI middleware: request id, body size limit, last-resort errors, headers.

It is one pure ASGI layer rather than several Starlette middlewares so that every
response, including a 413 for an oversized body, a 404, a CORS preflight and a 500 from
an unhandled exception, leaves through the same place that stamps the request id and
the security headers: the API's CSP (``default-src 'none'; frame-ancestors 'none'``),
framing, sniffing, referrer, permissions and cross-origin policies, ``Cache-Control:
no-store`` (always on authenticated responses, and by default on the rest: an API
answer is never worth caching by an intermediary), HSTS over TLS or when configured,
the rate-limit fields the dependencies left in the scope, and no ``Server`` or
``X-Powered-By``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from secops.api.problems import problem_bytes

log = logging.getLogger("secops.api")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy",
     b"accelerometer=(), camera=(), geolocation=(), microphone=(), payment=(), usb=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
STRIPPED = {b"server", b"x-powered-by"}
OVERRIDABLE = {b"content-security-policy", b"referrer-policy"}
HSTS = b"max-age=63072000; includeSubDomains"


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, hsts: bool = False,
                 body_limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        # Upload routes stream their bodies and check each file themselves: a larger cap.
        self.body_limits = body_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in STRIPPED]
                # A console page sets its own CSP (with its nonce) and referrer policy (its
                # forms need a same-origin Origin); everything else gets the API's.
                own = {k.lower() for k, _ in headers} & OVERRIDABLE
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in own)
                headers.append((b"x-request-id", request_id.encode()))
                state = scope.get("state", {})
                for name, value in state.get("ratelimit_headers", ()):
                    headers.append((name.lower().encode(), value.encode()))
                has_cache = any(k.lower() == b"cache-control" for k, _ in headers)
                if state.get("authenticated") or not has_cache:
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                if tls or self.hsts:
                    headers.append((b"strict-transport-security", HSTS))
                message["headers"] = headers
            await send(message)

        max_body_bytes = self.body_limits.get(scope.get("path", ""), self.max_body_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > max_body_bytes:
            await self._problem(send_with_headers, 413, "request body is too large", request_id)
            return
        received = 0
        answered = False  # we sent the response ourselves: drop whatever the app sends after

        async def guarded_send(message: Message) -> None:
            if not answered:
                await send_with_headers(message)

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body_bytes:
                    if not started:
                        await self._problem(send_with_headers, 413, "request body is too large",
                                            request_id)
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if answered:
                # Expected: after our 413 the app was handed a disconnect and gives up
                # on the body (ClientDisconnect); the client already has its answer.
                log.debug("request abandoned after 413", extra={"request_id": request_id})
                return
            log.exception("unhandled error", extra={"request_id": request_id,
                                                    "path": scope.get("path")})
            if not started:
                await self._problem(send_with_headers, 500, "internal error", request_id)

    @staticmethod
    async def _problem(send: Send, status: int, detail: str, request_id: str) -> None:
        body = problem_bytes(status, detail, request_id)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
