"""Loading, versioning and caching of YARA rules.

The ruleset version is the SHA-256 of every rule file's namespace and bytes, in a
stable order, so two workers with the same rules report the same version and a cached
verdict can be trusted only while the rules are unchanged. Compiled rules are cached
per process by that version: compiling is the slow part (tens of milliseconds for the
bundled set, far more for large third-party sets) and must not happen per file.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import yara

BUNDLED_RULES_DIR = Path(__file__).with_name("rules")
RULE_SUFFIXES = (".yar", ".yara")


class RulesError(Exception):
    """A rule directory is missing or a rule file does not compile."""


@dataclass(frozen=True, slots=True)
class RuleSource:
    namespace: str
    path: Path
    text: bytes


@dataclass(frozen=True, slots=True)
class Ruleset:
    version: str
    rules: yara.Rules
    files: tuple[Path, ...]


_cache: dict[str, yara.Rules] = {}
_lock = threading.Lock()


def rule_files(rule_dirs: tuple[Path, ...], *, include_bundled: bool = True) -> list[Path]:
    """Bundled rules first, then each configured directory in order, files sorted."""
    dirs = ([BUNDLED_RULES_DIR] if include_bundled else []) + list(rule_dirs)
    files: list[Path] = []
    for directory in dirs:
        if not directory.is_dir():
            raise RulesError(f"rule directory not found: {directory}")
        files.extend(
            sorted(p for p in directory.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file())
        )
    return files


def _read_sources(files: list[Path]) -> list[RuleSource]:
    sources = []
    for index, path in enumerate(files):
        # Namespaces keep rules with the same name in different directories apart.
        prefix = "secops" if path.parent == BUNDLED_RULES_DIR else f"dir{index}"
        sources.append(RuleSource(f"{prefix}.{path.stem}", path, path.read_bytes()))
    return sources


def _version(sources: list[RuleSource]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.namespace.encode() + b"\0")
        digest.update(hashlib.sha256(source.text).digest())
    return digest.hexdigest()


def load_ruleset(
    rule_dirs: tuple[Path, ...] = (), *, include_bundled: bool = True
) -> Ruleset:
    """Compile (or fetch from the per-process cache) the rules of these directories."""
    files = rule_files(rule_dirs, include_bundled=include_bundled)
    sources = _read_sources(files)
    version = _version(sources)
    with _lock:
        compiled = _cache.get(version)
        if compiled is None:
            try:
                # Compile from the bytes that were hashed, so the version always
                # describes exactly what runs, even if a file changes meanwhile.
                compiled = yara.compile(
                    sources={s.namespace: s.text.decode("utf-8") for s in sources},
                    includes=False,
                )
            except (yara.Error, UnicodeDecodeError) as exc:
                raise RulesError(f"rules do not compile: {exc}") from exc
            _cache[version] = compiled
    return Ruleset(version=version, rules=compiled, files=tuple(files))


def ruleset_version(rule_dirs: tuple[Path, ...] = (), *, include_bundled: bool = True) -> str:
    """The version a scan with these rules would record, without scanning anything."""
    return load_ruleset(rule_dirs, include_bundled=include_bundled).version
