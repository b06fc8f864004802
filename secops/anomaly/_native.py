"""Which modules of the engine run compiled.

``setup.py`` compiles the engine's hot modules with Cython, from the same source, and
records each source's SHA-256 in ``_compiled.json``. A compiled module is used only while
its source still has that digest: after an edit (or a checkout of other sources) without
a rebuild, the source is imported instead, so stale compiled code never runs.
``SECOPS_PURE_PYTHON=1`` makes every module run as source.

``_scan`` (from ``_scan.pyx``) and ``_jsonl`` (from ``_jsonl.pyx``) have no Python twin:
:func:`scanner` and :func:`json_reader` give them while their source is unchanged, else
``None``, and the parsers then run their regular expressions and the ``json`` module.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent
MANIFEST = HERE / "_compiled.json"


def _built() -> dict[str, str]:
    try:
        data = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):   # no build, or an unreadable record: trust no compiled
        return {}                   # module (each runs from source, as documented)
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _compiled_file(name: str) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = HERE / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def compiled_modules() -> dict[str, bool]:
    """Each module with a compiled file next to it: whether that file may be used."""
    built = _built()
    # Read here, not through secops.config: it decides which code the package imports,
    # before anything else of it runs (and the engine reads no settings).
    pure = bool(os.environ.get("SECOPS_PURE_PYTHON"))
    found: dict[str, bool] = {}
    for path in [*HERE.glob("*.py"), *HERE.glob("*.pyx")]:
        name = path.stem
        if _compiled_file(name) is None:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[name] = not pure and built.get(name) == digest
    return found


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the listed modules of this package as source, ahead of their compiled files."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        package, _, name = fullname.rpartition(".")
        if package != __package__ or name not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, HERE / f"{name}.py")


def install() -> set[str]:
    """Import stale or unwanted compiled modules from source; returns their names."""
    names = {name for name, usable in compiled_modules().items()
             if not usable and (HERE / f"{name}.py").exists()}
    if names and not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder(names))
    return names


def native(name: str) -> ModuleType | None:
    """The native module ``name`` (a ``.pyx`` of its own), or ``None`` when it is not
    built, is stale (its source changed since the build) or ``SECOPS_PURE_PYTHON`` is set."""
    if not compiled_modules().get(name):
        return None
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:   # built for another interpreter, or a broken file: the fallback
        return None


def scanner() -> ModuleType | None:
    """The native line scanner (``_scan``), or ``None`` (see :func:`native`)."""
    return native("_scan")


def json_reader() -> ModuleType | None:
    """The native JSON lines reader (``_jsonl``), or ``None`` (see :func:`native`)."""
    return native("_jsonl")
