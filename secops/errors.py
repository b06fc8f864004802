"""SecOps exceptions.

One root, so callers can catch everything we raise on purpose. Only the API layer maps
these to HTTP problem+json and only the CLI maps them to exit codes; messages are safe
to show a client (no secrets, no internals).

    SecOpsError
    ├── ConfigurationError      settings or a required secret missing/invalid
    ├── InvalidInput            a request or argument that can never succeed as given
    │   └── PayloadTooLarge         an uploaded file over the configured size limit
    ├── NotFound                no such job, key or schedule (or not visible to the caller)
    ├── Conflict                the request clashes with current state
    │   └── IdempotencyInProgress   the same Idempotency-Key is still being created
    ├── AuthenticationFailed    no, bad, expired or revoked credentials (one message for all)
    ├── PermissionDenied        authenticated, but the role does not allow it
    └── Unavailable             a dependency (database, broker) cannot be reached now
        └── AuditChainBroken        the audit chain's head is missing: audited actions wait
"""

from __future__ import annotations

from typing import Any


class SecOpsError(Exception):
    """Root of every error SecOps raises on purpose."""

    title = "SecOps error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ConfigurationError(SecOpsError):
    title = "Configuration error"


class InvalidInput(SecOpsError):
    title = "Invalid input"


class PayloadTooLarge(InvalidInput):
    title = "Payload too large"


class NotFound(SecOpsError):
    title = "Not found"


class Conflict(SecOpsError):
    title = "Conflict"


class IdempotencyInProgress(Conflict):
    title = "Request in progress"


class AuthenticationFailed(SecOpsError):
    title = "Authentication failed"

    def __init__(self) -> None:
        super().__init__("authentication failed")


class PermissionDenied(SecOpsError):
    title = "Forbidden"


class Unavailable(SecOpsError):
    title = "Service unavailable"


class DatabaseUnavailable(Unavailable):
    """The database could not be written (unreachable, busy, or it did not confirm a
    commit): the client may retry, with the same Idempotency-Key."""

    retry_after = 5

    def __init__(self) -> None:
        super().__init__("the database is busy or unavailable; try again later")


class AuditChainBroken(Unavailable):
    """The audit chain cannot be appended to safely (its head row is gone)."""

    title = "Audit log unavailable"
