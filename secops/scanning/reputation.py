"""Hash blocklists: SHA-256 and MD5 digests of known-bad files, one per line.

A line may carry a comment after the digest (``<hex>  name  # source``); anything that
is not a 32 or 64 digit hex string in the first column is ignored rather than fatal,
because blocklists are usually fetched from third parties and contain headers.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

_HEX = frozenset(string.hexdigits)


def _read_digests(paths: tuple[Path, ...], length: int) -> frozenset[str]:
    digests: set[str] = set()
    for path in paths:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                token = line.split("#", 1)[0].strip().split(maxsplit=1)
                if token and len(token[0]) == length and set(token[0]) <= _HEX:
                    digests.add(token[0].lower())
    return frozenset(digests)


@dataclass(frozen=True, slots=True)
class Blocklist:
    sha256: frozenset[str] = frozenset()
    md5: frozenset[str] = frozenset()

    @classmethod
    def load(cls, sha256_files: tuple[Path, ...], md5_files: tuple[Path, ...]) -> Blocklist:
        return cls(_read_digests(sha256_files, 64), _read_digests(md5_files, 32))

    def __bool__(self) -> bool:
        return bool(self.sha256 or self.md5)
