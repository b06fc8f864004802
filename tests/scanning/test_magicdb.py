"""The reduced libmagic database gives libmagic's own answer (secops.scanning.magicdb).

The oracle is libmagic itself with its default flags and its whole default database: a
fresh ``magic.Magic`` handle that no code of ours configures. Every sample is typed by
``identify`` (which takes the reduced database where it applies) and by the oracle, and
must get the same MIME type and description; scanning must give the same results,
verdicts included, with the reduced database and without it.
"""

from __future__ import annotations

import random
import struct

import magic
import pytest

from secops.scanning import ScanConfig, Scanner, filetype, magicdb
from tests.scanning.corpus import (
    benign_corpus,
    gif,
    minimal_elf,
    minimal_pe,
    pdf,
    png,
    tar_bytes,
    zip_bytes,
)
from tests.scanning.ole_builder import vba_project_ole

WORDS = ("invoice payment server request client report budget quarterly customer order "
         "shipment delivery address account balance transfer status error warning info "
         "debug started finished user admin session token").split()


def _log(rng: random.Random, lines: int, newline: str = "\n") -> bytes:
    return "".join(f"2026-01-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z "
                   f"{rng.choice(WORDS).upper()} " + " ".join(rng.choices(WORDS, k=12))
                   + newline for _ in range(lines)).encode()


def varied_corpus() -> dict[str, bytes]:
    """Text logs, JSON, CSV, scripts with interpreter lines, HTML, XML, PDF, OLE, zip,
    tar, gzip, ELF, PE, images, empty files, binary junk, UTF-16 and other encodings."""
    rng = random.Random(28)
    corpus = dict(benign_corpus(240))
    corpus.update({
        "app.log": _log(rng, 80),
        "short.log": _log(rng, 3),
        "crlf.log": _log(rng, 60, "\r\n"),
        "cr.log": _log(rng, 60, "\r"),
        "escapes.log": b"\x1b[1mERROR\x1b[0m disk full on /dev/sda1\n" * 90,
        "long-line.log": b"x" * 9000 + b"\n",
        "no-newline.txt": b"one line of text without a terminator",
        "tabs.tsv": b"id\tname\tvalue\n" + b"".join(b"%d\t%s\t%d\n" % (i, w.encode(), i * 7)
                                                  for i, w in enumerate(WORDS)),
        "rows.csv": b"name,team,score\n" + b"".join(b"%s,blue,%d\n" % (w.encode(), i)
                                                    for i, w in enumerate(WORDS)),
        "small.json": b'{"user": "alice", "roles": ["reader"], "n": 3}\n',
        "lines.ndjson": b'{"a": 1}\n{"a": 2}\n{"b": [1, 2]}\n',
        "big.json": b"[" + b",".join(b'{"id": %d, "v": "%s"}' % (i, rng.choice(WORDS).encode())
                                     for i in range(400)) + b"]",
        "cut.json": b'{"items": [' + b'"word", ' * 900,
        "run.sh": b"#!/bin/sh\nset -e\necho started\n",
        "run.bash": b"#!/usr/bin/env bash\nfor f in *; do echo \"$f\"; done\n",
        "tool.py": b"#!/usr/bin/env python3\nimport sys\n\nprint(sys.argv)\n",
        "tool.pl": b"#!/usr/bin/perl\nuse strict;\nprint \"hi\\n\";\n",
        "tool.rb": b"#!/usr/bin/env ruby\nputs 'hi'\n",
        "tool.js": b"#!/usr/bin/env node\nconsole.log('hi');\n",
        "page.php": b"<?php echo 'hi'; ?>\n",
        "setup.bat": b"@echo off\r\nset X=1\r\ncall other.bat\r\n",
        "get.ps1": b"$wc = New-Object Net.WebClient\n$wc.DownloadString('http://x')\n",
        "main.c": b"#include <stdio.h>\n\nint main(void)\n{\n    return 0;\n}\n",
        "Main.java": b"import java.util.List;\n\npublic class Main {\n}\n",
        "Makefile": b"CFLAGS = -O2\n\nall: main\n\tcc $(CFLAGS) -o main main.c\n",
        "paper.tex": b"\\documentclass{article}\n\\begin{document}\nHi\n\\end{document}\n",
        "page.html": b"<!DOCTYPE html>\n<html><head><title>t</title></head><body>x</body></html>\n",
        "feed.xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<feed><entry>x</entry></feed>\n',
        "report.pdf": pdf(b"/PageMode /UseNone "),
        "macro.doc": vba_project_ole("Sub AutoOpen()\n  MsgBox \"hi\"\nEnd Sub\n"),
        "bundle.zip": zip_bytes([("a.txt", _log(rng, 20)), ("b.bin", rng.randbytes(500))]),
        "files.tar": tar_bytes([("a.txt", _log(rng, 10))]),
        "files.tgz": tar_bytes([("a.txt", _log(rng, 10))], "w:gz"),
        "prog.elf": minimal_elf(),
        "prog.exe": minimal_pe(),
        "image.png": png(8, 8, seed=3),
        "image.gif": gif(),
        "empty.txt": b"",
        "one.txt": b"x",
        "junk.bin": rng.randbytes(6000),
        "zeros.bin": bytes(5000),
        "utf16le.txt": "caf\u00e9 log line\r\n".encode("utf-16") * 40,
        "utf16be.txt": b"\xfe\xff" + "caf\u00e9 log line\n".encode("utf-16-be") * 40,
        "utf8.txt": "caf\u00e9 \u00fcber na\u00efve r\u00e9sum\u00e9\n".encode() * 40,
        "utf8-bom.txt": b"\xef\xbb\xbf" + b"plain words after a mark\n" * 40,
        "latin1.txt": "caf\u00e9 na\u00efve\n".encode("latin-1") * 40,
        "control.txt": b"text with a \x01 control byte\n" * 40,
        "nul.txt": b"text with a \x00 NUL byte\n" * 40,
        "ebcdic.txt": "HELLO WORLD THIS IS EBCDIC TEXT\n".encode("cp500") * 40,
    })
    return corpus


def _key_texts(database: magicdb.QuickDatabase) -> dict[str, bytes]:
    """Logs with a dropped test's run inside (any case), and with the run changed by
    one character (a near miss): texts on both sides of the check."""
    rng = random.Random(12)
    keys = sorted(database_keys(database))
    out = {}
    for n, key in enumerate(rng.sample(keys, min(len(keys), 120))):
        text = _log(rng, 30)
        at = rng.randrange(len(text))
        cased = bytes(c ^ 0x20 if 97 <= c <= 122 and rng.random() < 0.5 else c for c in key)
        out[f"key{n}.log"] = text[:at] + cased + text[at:]
        middle = len(key) // 2
        near = key[:middle] + (b"#" if key[middle:middle + 1] != b"#" else b"%") + key[middle + 1:]
        out[f"near{n}.log"] = text[:at] + near + text[at:]
        out[f"opens{n}.txt"] = key + b"\n" + text
    return out


def database_keys(database: magicdb.QuickDatabase) -> set[bytes]:
    raw = open(_compiled_database(), "rb").read()
    reduced = magicdb.reduce_database(raw)
    assert reduced is not None
    return set(reduced.keys)


def _compiled_database() -> str:
    for component in magicdb._search_path():
        base = component[:-4] if component.endswith(".mgc") else component
        try:
            with open(base + ".mgc", "rb"):
                return base + ".mgc"
        except OSError:
            continue
    raise AssertionError("no compiled database on libmagic's path")


@pytest.fixture(scope="module")
def database() -> magicdb.QuickDatabase:
    loaded = magicdb.load()
    if loaded is None:
        pytest.skip("this libmagic's database format is not one magicdb reduces")
    return loaded


@pytest.fixture(scope="module")
def oracle() -> tuple[magic.Magic, magic.Magic]:
    return magic.Magic(mime=True), magic.Magic()


def _head(data: bytes, magic_bytes: int, json_bytes: int) -> bytes:
    """What ``identify`` shows libmagic (its documented head rule)."""
    head = data[:magic_bytes]
    if json_bytes > magic_bytes and len(data) > magic_bytes and filetype.opens_like_json(head):
        head = data[:json_bytes]
    return head


def test_identify_gives_libmagics_answer_on_a_varied_corpus(database, oracle) -> None:
    corpus = {**varied_corpus(), **_key_texts(database)}
    mime_oracle, text_oracle = oracle
    applied = recognised = 0
    for name, data in corpus.items():
        for magic_bytes, json_bytes in ((4096, 1024 * 1024), (1024, 0), (512, 0)):
            head = _head(data, magic_bytes, json_bytes)
            expected = (mime_oracle.from_buffer(head), text_oracle.from_buffer(head))
            alone = filetype.identify(data, magic_bytes, describe=False, json_bytes=json_bytes)
            both = filetype.identify(data, magic_bytes, json_bytes=json_bytes)
            assert (alone.mime, both.mime, both.description) == \
                (expected[0], expected[0], expected[1]), (name, magic_bytes)
            if len(head) <= magic_bytes and database.applies(head):
                applied += 1
                recognised += expected[0] != "text/plain"
    # the reduced database answered for a good share, not only for plain text
    assert applied >= 300 and recognised >= 20, (applied, recognised)


def test_scan_results_are_the_same_without_the_reduced_database(database, oracle) -> None:
    corpus = {**varied_corpus(), **_key_texts(database)}
    scanner = Scanner(ScanConfig(describe=False, md5=False))
    fast = {name: scanner.scan_bytes(data, name) for name, data in corpus.items()}
    plain = Scanner(ScanConfig(describe=False, md5=False, reduced_magic=False))
    whole = {name: plain.scan_bytes(data, name) for name, data in corpus.items()}
    mime_oracle = oracle[0]
    verdicts = set()
    for name, data in corpus.items():
        assert fast[name].to_dict() == whole[name].to_dict(), name
        assert fast[name].verdict == whole[name].verdict
        assert fast[name].mime == mime_oracle.from_buffer(_head(data, 4096, 1024 * 1024)), name
        verdicts.add(fast[name].verdict.value)
    assert verdicts >= {"clean", "suspicious"}, verdicts


def test_the_check_applies_to_ascii_text_without_the_runs(database) -> None:
    rng = random.Random(3)
    assert database.applies(_log(rng, 40))
    assert database.applies(b"")
    for text in (b"text with a \x01 control byte\n", b"a\x00b\n", "caf\u00e9\n".encode(),
                 "log line\n".encode("utf-16"), b"\x7f", b"\x80"):
        assert not database.applies(text), text
    key = sorted(database_keys(database))[0]
    assert not database.applies(b"words " + key.upper() + b" words\n")
    assert not database.applies(b"words " + key + b" words\n")


def test_regular_expression_runs() -> None:
    runs = magicdb.regex_runs
    assert runs(rb"^export (function|class|default) ") == [b"export ", b" "]
    assert runs(rb"\((async )?function[( ]") == [b"(", b"function"]
    assert runs(rb"^import.*;$") == [b"import", b";"]
    assert runs(rb"^[ \t]{0,50}\.asciiz") == [b".asciiz"]
    assert runs(rb"li:pcb-rnd-font-v[0-9]+[ \t\r\n]*[{]") == [b"li:pcb-rnd-font-v"]
    assert runs(rb"module(\.|\[[\"'])exports.*=") == [b"module", b"exports", b"="]
    assert runs(rb"ab?c*d+e{0,2}f{2}") == [b"a", b"d", b"f"]
    assert runs(rb"Typeof\s+x") == [b"typeof", b"x"]  # GNU \s is not a letter s
    assert runs(rb"^(:|;)") == []
    assert runs(rb"a|b") is None and runs(rb"x{") is None and runs(rb"[abc") is None
    assert runs(rb"(unclosed") is None and runs(b"trailing\\") is None


def test_keys_of_string_tests() -> None:
    # without white-space flags the whole value must appear; with them, each part
    assert magicdb.test_key(5, 0x20, b"$\nship") == b"$\nship"
    assert magicdb.test_key(20, 0x1, b"Subject:  Hello World") == b"subject:"
    assert magicdb.test_key(17, 0, b"^PROC[[:space:]]x") == b"proc"
    assert magicdb.test_key(8, 0, b"\x00\x01") is None


def test_other_database_formats_are_not_reduced() -> None:
    entry = magicdb.ENTRY_SIZE
    header = struct.pack("=IIII", magicdb.MGC_MAGIC, magicdb.MGC_VERSION, 1, 0)
    good = header.ljust(entry, b"\0") + bytes(entry)
    assert magicdb.reduce_database(good) is not None
    wrong_version = struct.pack("=IIII", magicdb.MGC_MAGIC, 21, 1, 0).ljust(entry, b"\0")
    assert magicdb.reduce_database(wrong_version + bytes(entry)) is None
    assert magicdb.reduce_database(good[:-1]) is None
    assert magicdb.reduce_database(good + bytes(entry)) is None  # counts do not add up
    swapped = struct.pack(">IIII", magicdb.MGC_MAGIC, magicdb.MGC_VERSION, 1, 0)
    assert magicdb.reduce_database(swapped.ljust(entry, b"\0") + bytes(entry)) is None
