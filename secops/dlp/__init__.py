"""DLP: find personal, card, health and credential data in documents and classify them.

Pure domain code (no database, no network, no settings): callers pass a policy, an
optional HMAC key and limits, and get plain dataclasses back.

Data model::

    Policy ── packs (PII, PCI, PHI, SECRETS; YAML/TOML files) ── Rule per type
    Classifier(policy, hmac_key=..., limits=..., archive_walker=...)
        .scan_text(text) / .scan_bytes(data, filename) / .scan_parts(parts)
            -> DocumentResult(classification, findings, parts, blocked, truncated, errors)
        .iter_stream(text_stream) -> Finding... (constant memory, any length)
    Finding(type, category, start, end, score, part, action, level, preview, digest)
    redact(text, findings, style="type"|"mask"|"policy") -> str

A finding never holds the matched value (only a masked preview and a keyed hash).
Limits: extraction is bounded by :class:`Limits`; archives inside documents need the
``archive_walker`` hook (the scanning engine's safe walker); scanned text is windowed
so memory does not grow with input length.
"""

from secops.dlp.engine import ArchiveWalker, Classifier
from secops.dlp.errors import DlpError, ExtractionError, PolicyError
from secops.dlp.extract import Extraction, Limits, Part, extract
from secops.dlp.model import DocumentResult, Finding, PartInfo
from secops.dlp.policy import Pack, Policy, Rule
from secops.dlp.redact import keyed_hash, mask, redact

__all__ = [
    "ArchiveWalker",
    "Classifier",
    "DlpError",
    "DocumentResult",
    "Extraction",
    "ExtractionError",
    "Finding",
    "Limits",
    "Pack",
    "Part",
    "PartInfo",
    "Policy",
    "PolicyError",
    "Rule",
    "extract",
    "keyed_hash",
    "mask",
    "redact",
]
