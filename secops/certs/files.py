"""Reading certificates from PEM and DER files and directories.

A file is PEM when it holds a ``-----BEGIN`` line, otherwise it is tried as one DER
certificate. Each PEM ``CERTIFICATE`` block is parsed on its own, so one damaged block
is reported without losing the others. Directories are walked recursively in sorted
order and only files named like certificates (``.pem .crt .cer .der .cert``) are read
there; a file named explicitly is always read.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der", ".cert"}
MAX_FILE_BYTES = 16 * 1024 * 1024
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


@dataclass
class FileItem:
    """One certificate read from ``path``, or the reason nothing (more) could be read."""

    path: str
    cert: x509.Certificate | None = None
    error: str | None = None
    error_id: str | None = None


def walk(target: str) -> Iterator[Path]:
    path = Path(target)
    if path.is_dir():
        for root, dirs, files in os.walk(path, onerror=None):
            dirs.sort()
            for name in sorted(files):
                candidate = Path(root) / name
                if candidate.suffix.lower() in CERT_SUFFIXES:
                    yield candidate
    else:
        yield path


def read_file(path: Path) -> list[FileItem]:
    """Every certificate in ``path`` and an item for each part that could not be read."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return [FileItem(name, error=f"cannot read file: {exc.strerror or type(exc).__name__}",
                         error_id="file.unreadable")]
    if len(data) > MAX_FILE_BYTES:
        return [FileItem(name, error=f"file larger than {MAX_FILE_BYTES} bytes",
                         error_id="file.unreadable")]
    return parse_bytes(data, name)


def parse_bytes(data: bytes, name: str) -> list[FileItem]:
    if b"-----BEGIN" in data:
        return _parse_pem(data, name)
    try:
        return [FileItem(name, cert=x509.load_der_x509_certificate(data))]
    except ValueError:
        what = "empty file" if not data else "neither PEM nor a DER certificate"
        return [FileItem(name, error=f"not a certificate: {what}", error_id="cert.malformed")]


def _parse_pem(data: bytes, name: str) -> list[FileItem]:
    items: list[FileItem] = []
    blocks = 0
    for index, match in enumerate(_PEM_BLOCK.finditer(data), start=1):
        label = match.group(1).decode("ascii")
        if label not in ("CERTIFICATE", "X509 CERTIFICATE"):
            continue
        blocks += 1
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
            items.append(FileItem(name, cert=x509.load_der_x509_certificate(der)))
        except (ValueError, binascii.Error):
            items.append(FileItem(name, error=f"malformed PEM certificate (block {index})",
                                  error_id="cert.malformed"))
    if not blocks:
        unterminated = data.count(b"-----BEGIN CERTIFICATE-----") > 0
        reason = ("a CERTIFICATE block without its END line" if unterminated
                  else "no CERTIFICATE block in the PEM data")
        items.append(FileItem(name, error=f"malformed PEM: {reason}", error_id="cert.malformed"))
    return items
