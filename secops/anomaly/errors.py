"""Errors of the anomaly engine; all are :class:`secops.errors.InvalidInput`."""

from __future__ import annotations

from secops.errors import InvalidInput


class AnomalyError(InvalidInput, ValueError):
    """Root of the anomaly engine's errors."""

    title = "Anomaly detection error"


class RuleError(AnomalyError):
    """A rule file or rule that cannot be used (the message names the file and reason)."""


class FormatError(AnomalyError):
    """A log file whose format cannot be recognised."""
