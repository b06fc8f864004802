"""RFC 9457 problem details: the only shape of an error response.

Each problem carries ``type``, ``title``, ``status``, ``detail`` and the ``request_id``
that also tags the server's log lines for the request. Nothing of an unexpected
exception reaches the client; authentication failures all read the same.
"""

from __future__ import annotations

import json
from typing import Any

from secops.errors import (
    AuthenticationFailed,
    ConfigurationError,
    Conflict,
    IdempotencyInProgress,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    SecOpsError,
    Unavailable,
)

PROBLEM_TYPE_BASE = "https://secops.dev/problems/"
STATUS_FOR: list[tuple[type[SecOpsError], int]] = [
    (IdempotencyInProgress, 409),
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (Unavailable, 503),
    (ConfigurationError, 500),
]
TITLES = {400: "Bad request", 401: "Authentication failed", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
          415: "Unsupported media type", 422: "Invalid input", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}
SLUGS = {400: "bad-request", 401: "authentication-failed", 403: "forbidden", 404: "not-found",
         405: "method-not-allowed", 409: "conflict", 413: "payload-too-large",
         415: "unsupported-media-type", 422: "invalid-input", 429: "rate-limited",
         500: "internal-error", 503: "unavailable"}


def status_for(exc: SecOpsError) -> int:
    for cls, status in STATUS_FOR:
        if isinstance(exc, cls):
            return status
    return 400


def problem(status: int, detail: str, request_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + SLUGS.get(status, "error"),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    body.update(extra)
    return body


def problem_bytes(status: int, detail: str, request_id: str, **extra: Any) -> bytes:
    return json.dumps(problem(status, detail, request_id, **extra)).encode()
