"""Builds the anomaly engine's hot modules as C extensions with Cython.

The compiled modules are the same Python source (``secops/anomaly/{detector,store,
parsers,reading}.py``) translated by Cython: no second implementation to keep in step.
They cut the local engine's CPU time per log line; without a C compiler or Cython the
build warns and the package runs on the source alone. ``SECOPS_PURE_PYTHON=1`` skips
the compilation (and, at run time, makes the package use the source).

Two more extensions have no Python twin: ``secops/anomaly/_scan.pyx`` reads the
usual-shape access and sshd lines by scanning characters, giving exactly what the parsers'
regular expressions give (``tests/anomaly/test_scan.py`` checks it against them), and
``secops/anomaly/_jsonl.pyx`` reads the usual-shape JSON lines into exactly the events the
JSON lines parser makes of them (``tests/anomaly/test_jsonl.py``); without them the
parsers run the expressions and the ``json`` module.

Next to the modules the build writes ``_compiled.json``, the SHA-256 of each source it
compiled (``.py``, or ``.pyx`` for ``_scan`` and ``_jsonl``): :mod:`secops.anomaly._native`
uses a compiled module only while its source is unchanged, so editing a module in a
checkout never runs stale compiled code.

Metadata lives in pyproject.toml; ``pip install -e .`` builds in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
PACKAGE = "secops.anomaly"
MODULES = ("detector", "store", "parsers", "reading")
NATIVE = ("_scan", "_jsonl")   # Cython sources (.pyx) of their own
FALLBACK = {"_scan": "the parsers use their regular expressions",
            "_jsonl": "the JSON lines parser reads every line"}
MANIFEST = "_compiled.json"
_MANIFEST_LOCK = threading.Lock()   # build_ext builds the modules in parallel threads


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class BuildNative(build_ext):
    """build_ext that tolerates a missing compiler and writes the source manifest."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:   # no compiler, no Python headers: the source still runs
            self.warn(f"the anomaly engine is not compiled ({exc}); it runs as Python source")

    def build_extension(self, ext):  # type: ignore[no-untyped-def]
        name = ext.name.rsplit(".", 1)[1]
        try:
            super().build_extension(ext)
        except Exception as exc:
            fallback = FALLBACK.get(name, "it runs as Python source")
            self.warn(f"{ext.name} is not compiled ({exc}); {fallback}")
            return
        suffix = ".pyx" if name in NATIVE else ".py"
        digest = _digest(ROOT / "secops" / "anomaly" / f"{name}{suffix}")
        # next to the built module (a wheel), and in the source tree, where an editable
        # install imports the modules from
        with _MANIFEST_LOCK:
            for folder in {Path(self.get_ext_fullpath(ext.name)).parent, ROOT / "secops" / "anomaly"}:
                manifest = folder / MANIFEST
                built = json.loads(manifest.read_text()) if manifest.exists() else {}
                built[name] = digest
                manifest.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")


def _extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get("SECOPS_PURE_PYTHON"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("setup.py: Cython is not installed; the anomaly engine runs as Python source",
              file=sys.stderr)
        return []
    from setuptools import Extension

    # no debug information: a quarter of the size and less compile time
    extensions = [Extension(f"{PACKAGE}.{name}", [f"secops/anomaly/{name}{suffix}"], optional=True,
                            extra_compile_args=["-g0"])
                  for names, suffix in ((MODULES, ".py"), (NATIVE, ".pyx")) for name in names]
    return cythonize(extensions, language_level=3, quiet=True, nthreads=os.cpu_count() or 1)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildNative},
      options={"build_ext": {"parallel": os.cpu_count() or 1}})
