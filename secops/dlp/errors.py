"""Exceptions of the DLP engine, under the project's root :class:`~secops.errors.SecOpsError`.

::

    SecOpsError
    └── InvalidInput
        └── DlpError (also a ValueError)
            ├── PolicyError        a policy file is malformed or names an unknown type
            └── ExtractionError    a document could not be read (corrupt, too large, too slow)
                └── ArchiveError   an archive was only partly read (limits, bombs, damage)

The API layer maps them as InvalidInput; the CLI maps them to exit code 2.
"""

from __future__ import annotations

from secops.errors import InvalidInput


class DlpError(InvalidInput, ValueError):
    """Root of the DLP engine's errors."""

    title = "DLP error"


class PolicyError(DlpError):
    """A policy or custom detector definition is invalid."""

    title = "Invalid DLP policy"


class ExtractionError(DlpError):
    """A document could not be turned into text within the limits."""

    title = "Document not readable"


class ArchiveError(ExtractionError):
    """Raised by an archive walker *after* yielding what it could read.

    ``problems`` are safe to show (no member content); ``truncated`` is true when a
    limit or a bomb stopped the expansion, false for damaged or encrypted members.
    """

    title = "Archive only partly read"

    def __init__(self, problems: list[str], *, truncated: bool) -> None:
        super().__init__("; ".join(problems) or "archive not fully read")
        self.problems = problems
        self.truncated = truncated
