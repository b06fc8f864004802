"""Suppressions and baseline files: findings a person has said are not a problem.

A :class:`Suppression` matches DLP findings (``family`` ``dlp``: a detector type, and
optionally the keyed digest of one value and a file-name pattern) or scan findings
(``family`` ``scan``: the content's SHA-256, optionally one rule id and a pattern).
:func:`filter_document` drops the suppressed findings of a DLP result and works out its
classification again; :func:`scan_suppressed` says whether one scan finding is.

A *baseline file* (JSON, like detect-secrets' ``.secrets.baseline``) carries such
entries so that a team can keep them in a repository::

    {"format": "secops-baseline", "version": 1, "salt": "<32 hex>",
     "entries": [{"family": "dlp", "detector": "email", "digest": "<64 hex>",
                  "path_pattern": "tests/*", "reason": "...", "expires_at": null},
                 {"family": "dlp", "detector": "credit_card", "sealed": "<base64>", ...},
                 {"family": "scan", "sha256": "<64 hex>", "detector": "eicar_test_file", ...}]}

``digest`` is HMAC-SHA256 keyed with the file's own ``salt`` (what the local commands
compute); ``sealed`` is a value digest the platform exported, encrypted under a key only
the platform holds, so it names a value without letting anyone compare it with
anything (see docs/dlp.md). A path pattern is a shell pattern (``*``, ``?``, ``[...]``)
matched against the whole path and against its last component.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from secops.dlp.errors import DlpError
from secops.dlp.model import DocumentResult, Finding, classification_of
from secops.scanning.models import FileResult

FORMAT = "secops-baseline"
VERSION = 1
FAMILIES = ("dlp", "scan")
MAX_ENTRIES = 10_000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DETECTOR = re.compile(r"[^\x00-\x1f\x7f]{1,100}")  # a detector type or any rule id


class BaselineError(DlpError):
    """A baseline file that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression as the matchers see it (no reason, no bookkeeping)."""

    family: str
    detector: str | None = None
    digest: str | None = None
    sha256: str | None = None
    path_pattern: str | None = None
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def path_matches(pattern: str | None, path: str | None) -> bool:
    """A missing pattern matches everything; a pattern needs a path to match."""
    if pattern is None:
        return True
    if not path:
        return False
    path = path.replace("\\", "/")
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(
        PurePosixPath(path).name, pattern)


def dlp_suppressed(rules: Sequence[Suppression], finding: Finding, path: str | None) -> bool:
    for rule in rules:
        if rule.family != "dlp" or rule.detector != finding.type:
            continue
        if rule.digest is not None and rule.digest != finding.digest:
            continue
        if path_matches(rule.path_pattern, path):
            return True
    return False


def filter_document(document: DocumentResult, rules: Sequence[Suppression],
                    path: str | None) -> tuple[DocumentResult, int]:
    """The document without its suppressed findings (classification and ``blocked``
    worked out from those left), and how many were dropped."""
    rules = [r for r in rules if r.family == "dlp"]
    if not rules or not document.findings:
        return document, 0
    kept = [f for f in document.findings if not dlp_suppressed(rules, f, path)]
    dropped = len(document.findings) - len(kept)
    if not dropped:
        return document, 0
    return replace(document, findings=kept, classification=classification_of(kept),
                   blocked=any(f.action == "block" for f in kept)), dropped


def scan_suppressed(rules: Iterable[Suppression], sha256: str, rule_id: str,
                    path: str | None) -> bool:
    """Whether a scan finding (``rule_id`` on content ``sha256``) is suppressed."""
    return any(r.family == "scan" and r.sha256 == sha256
               and (r.detector is None or r.detector == rule_id)
               and path_matches(r.path_pattern, path) for r in rules)


# -- baseline files --------------------------------------------------------------------------


@dataclass
class Baseline:
    """A baseline file's content; ``entries`` are plain dicts in the file's shape."""

    salt: str = field(default_factory=lambda: secrets.token_hex(16))
    entries: list[dict[str, Any]] = field(default_factory=list)
    generated_at: str | None = None
    # what add() compares (an entry without its reason and expiry), built at first use
    _identities: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> bytes:
        """The key of this file's ``digest`` entries (what a local classifier is given)."""
        return bytes.fromhex(self.salt)

    def rules(self, now: datetime | None = None) -> list[Suppression]:
        """The entries usable here and now: not expired, and not sealed (a sealed
        entry means something only to the platform that exported it)."""
        now = now or datetime.now(UTC)
        out = []
        for entry in self.entries:
            if entry.get("sealed"):
                continue
            rule = Suppression(entry["family"], entry.get("detector"), entry.get("digest"),
                               entry.get("sha256"), entry.get("path_pattern"),
                               parse_when(entry.get("expires_at")))
            if rule.active(now):
                out.append(rule)
        return out

    def add(self, entry: dict[str, Any]) -> bool:
        """Add an entry unless the same one is already there; True if added.
        BaselineError once the file holds ``MAX_ENTRIES`` (it would not load again)."""
        clean = validate_entry(entry, len(self.entries))
        if self._identities is None or len(self._identities) != len(self.entries):
            self._identities = {_identity(e) for e in self.entries}
        identity = _identity(clean)
        if identity in self._identities:
            return False
        if len(self.entries) >= MAX_ENTRIES:
            raise BaselineError(f"at most {MAX_ENTRIES} entries")
        self.entries.append(clean)
        self._identities.add(identity)
        return True

    def to_json(self) -> str:
        body = {"format": FORMAT, "version": VERSION,
                "generated_at": self.generated_at or datetime.now(UTC).isoformat(timespec="seconds"),
                "salt": self.salt, "entries": self.entries}
        return json.dumps(body, indent=2, sort_keys=False) + "\n"


def _identity(entry: dict[str, Any]) -> str:
    """An entry as :meth:`Baseline.add` compares it: without its reason and expiry."""
    return json.dumps({k: v for k, v in entry.items() if k not in ("reason", "expires_at")},
                      sort_keys=True)


def parse_when(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise BaselineError(f"expires_at {str(value)[:40]!r} is not an ISO 8601 date") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _text(entry: dict[str, Any], key: str, limit: int, where: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise BaselineError(f"{where}: {key} must be a non-empty string of at most {limit} "
                            "characters (no NUL)")
    return value


def validate_entry(entry: Any, index: int) -> dict[str, Any]:
    """One entry checked and reduced to the known keys; BaselineError says what is wrong."""
    where = f"entry {index}"
    if not isinstance(entry, dict):
        raise BaselineError(f"{where}: must be an object")
    family = entry.get("family")
    if family not in FAMILIES:
        raise BaselineError(f"{where}: family must be one of {', '.join(FAMILIES)}")
    detector = _text(entry, "detector", 100, where)
    if detector is not None and not _DETECTOR.fullmatch(detector):
        raise BaselineError(f"{where}: detector {detector[:40]!r} is not a detector or rule id")
    digest = _text(entry, "digest", 64, where)
    sealed = _text(entry, "sealed", 400, where)
    sha256 = _text(entry, "sha256", 64, where)
    pattern = _text(entry, "path_pattern", 500, where)
    reason = _text(entry, "reason", 500, where)
    if reason is None:
        raise BaselineError(f"{where}: a reason is required")
    for name, value in (("digest", digest), ("sha256", sha256)):
        if value is not None and not _HEX64.fullmatch(value):
            raise BaselineError(f"{where}: {name} must be 64 lower-case hex digits")
    if family == "dlp":
        if detector is None:
            raise BaselineError(f"{where}: a dlp entry names its detector")
        if sha256 is not None:
            raise BaselineError(f"{where}: a dlp entry has no sha256")
        if digest is not None and sealed is not None:
            raise BaselineError(f"{where}: give digest or sealed, not both")
        if digest is None and sealed is None and pattern is None:
            raise BaselineError(f"{where}: a dlp entry without a value needs a path_pattern "
                                "(a detector switched off everywhere belongs in the policy)")
    else:
        if sha256 is None:
            raise BaselineError(f"{where}: a scan entry names the content's sha256")
        if digest is not None or sealed is not None:
            raise BaselineError(f"{where}: a scan entry has no value digest")
    expires = parse_when(entry.get("expires_at"))
    out: dict[str, Any] = {"family": family}
    for key, value in (("detector", detector), ("digest", digest), ("sealed", sealed),
                       ("sha256", sha256), ("path_pattern", pattern), ("reason", reason)):
        if value is not None:
            out[key] = value
    out["expires_at"] = expires.isoformat() if expires is not None else None
    return out


def parse(text: str) -> Baseline:
    """A baseline from its JSON text; BaselineError for anything malformed."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BaselineError("not valid JSON") from None
    return from_mapping(data)


def from_mapping(data: Any) -> Baseline:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BaselineError(f"not a baseline file (\"format\" must be {FORMAT!r})")
    if data.get("version") != VERSION:
        raise BaselineError(f"unsupported baseline version {data.get('version')!r}")
    salt = data.get("salt")
    if not isinstance(salt, str) or not re.fullmatch(r"[0-9a-f]{32,64}", salt):
        raise BaselineError("salt must be 32 to 64 lower-case hex digits")
    entries = data.get("entries")
    if not isinstance(entries, list):
        raise BaselineError("entries must be a list")
    if len(entries) > MAX_ENTRIES:
        raise BaselineError(f"at most {MAX_ENTRIES} entries")
    generated = data.get("generated_at")
    return Baseline(salt, [validate_entry(e, i) for i, e in enumerate(entries)],
                    generated if isinstance(generated, str) else None)


def load(path: str) -> Baseline:
    """Read a baseline file; BaselineError (with the path) when it cannot be used."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(64 << 20)
    except OSError as exc:
        raise BaselineError(f"{path}: {exc.strerror or type(exc).__name__}") from None
    try:
        return parse(text)
    except BaselineError as exc:
        raise BaselineError(f"{path}: {exc}") from None


def filter_scan(result: FileResult, rules: Iterable[Suppression],
                path: str | None) -> tuple[FileResult, int]:
    """A scan result without its suppressed findings (its verdict follows from those
    left), and how many were dropped."""
    rules = [r for r in rules if r.family == "scan" and r.sha256 == result.sha256]
    if not rules or not result.findings:
        return result, 0
    kept = [f for f in result.findings if not scan_suppressed(rules, result.sha256, f.id, path)]
    return replace(result, findings=kept), len(result.findings) - len(kept)
