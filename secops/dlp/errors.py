"""Exceptions of the DLP engine.

::

    DlpError (ValueError)
    ├── PolicyError        a policy file is malformed or names an unknown type
    └── ExtractionError    a document could not be read (corrupt, too large, too slow)

The platform maps them (InvalidInput for both); the CLI maps them to exit code 2.
"""

from __future__ import annotations


class DlpError(ValueError):
    """Root of the DLP engine's errors."""


class PolicyError(DlpError):
    """A policy or custom detector definition is invalid."""


class ExtractionError(DlpError):
    """A document could not be turned into text within the limits."""
