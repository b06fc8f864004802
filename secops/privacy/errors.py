"""Exceptions of the privacy engine, under the project's root :class:`~secops.errors.SecOpsError`.

::

    SecOpsError
    ├── InvalidInput
    │   └── PrivacyError
    │       ├── MapError          the personal-data map is malformed or does not match a store
    │       │                     (names the file, the line and the key)
    │       ├── ReceiptError      a receipt is malformed, or its signature does not verify
    │       └── StoreRejected     a store's transaction failed for good and was rolled back
    │                             (a constraint, a missing column, a file that is not a database)
    └── Unavailable
        ├── StoreUnavailable      a data store of the map cannot be reached
        └── StoreFailed           a store's transaction failed and was rolled back; the
                                  failure may pass (a lost connection, a lock, a timeout)

The API layer maps them as their parents; the CLI maps them to exit code 2. Messages
never hold a personal value, a store's URL or a key.
"""

from __future__ import annotations

from secops.errors import InvalidInput, Unavailable


class PrivacyError(InvalidInput):
    """Root of the privacy engine's input errors."""

    title = "Privacy error"


class MapError(PrivacyError):
    """The map is invalid; ``str()`` reads ``FILE:LINE: KEY: problem``."""

    title = "Invalid personal-data map"

    def __init__(self, problem: str, *, file: str, line: int | None, key: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(
            f"{where}: {key}: {problem}" if key else f"{where}: {problem}",
            details={"file": file, "line": line, "key": key},
        )
        self.file, self.line, self.key, self.problem = file, line, key, problem


class ReceiptError(PrivacyError):
    """An erasure receipt is malformed or its signature does not verify."""

    title = "Invalid erasure receipt"


class StoreRejected(PrivacyError):
    """A store's transaction failed in a way retrying does not mend; it was rolled back."""

    title = "Data store transaction failed"


class StoreUnavailable(Unavailable):
    """A store named in the map cannot be reached (or its URL secret is missing)."""

    title = "Data store unavailable"


class StoreFailed(Unavailable):
    """A store's transaction failed; everything it had changed was rolled back."""

    title = "Data store transaction failed"
