"""Macros (OLE and OOXML), PDF actions with hex-escaped names, encrypted documents."""

from __future__ import annotations

import io

import msoffcrypto.format.ooxml
import pytest

from secops.scanning import Scanner, Severity, Verdict
from tests.scanning.conftest import ids, located
from tests.scanning.corpus import docx, pdf, zip_bytes
from tests.scanning.ole_builder import vba_project_ole

AUTO_SHELL = ('Attribute VB_Name = "Module1"\r\nSub AutoOpen()\r\n'
              '  Shell "cmd.exe /c calc.exe"\r\nEnd Sub\r\n')
HARMLESS = 'Attribute VB_Name = "Module1"\r\nSub Total()\r\n  x = 1 + 2\r\nEnd Sub\r\n'


def test_ole_macro_that_autoexecutes_a_shell_is_malicious(scanner: Scanner) -> None:
    result = scanner.scan_bytes(vba_project_ole(AUTO_SHELL), "invoice.doc")
    assert {"document.macro", "document.macro.autoexec", "document.macro.suspicious",
            "document.macro.autoexec_dangerous"} <= ids(result)
    assert result.verdict is Verdict.MALICIOUS


def test_ole_macro_without_autoexec_is_suspicious(scanner: Scanner) -> None:
    result = scanner.scan_bytes(vba_project_ole(HARMLESS), "totals.xls")
    assert "document.macro" in ids(result)
    assert "document.macro.autoexec" not in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


def test_ooxml_with_vba_project_is_analysed_inside(scanner: Scanner) -> None:
    docm = zip_bytes([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>"),
                      ("word/vbaProject.bin", vba_project_ole(AUTO_SHELL))])
    result = scanner.scan_bytes(docm, "report.docm")
    assert located(result, "document.ooxml.vba_project") == {"report.docm"}
    assert located(result, "document.macro.autoexec") == {"report.docm!word/vbaProject.bin"}
    assert result.verdict is Verdict.MALICIOUS


def test_plain_docx_is_clean(scanner: Scanner) -> None:
    assert scanner.scan_bytes(docx("quarterly numbers"), "report.docx").verdict is Verdict.CLEAN


def test_encrypted_office_document_is_unscannable(scanner: Scanner) -> None:
    plain = io.BytesIO(docx("secret plans"))
    encrypted = io.BytesIO()
    msoffcrypto.format.ooxml.OOXMLFile(plain).encrypt("pw", encrypted)
    result = scanner.scan_bytes(encrypted.getvalue(), "plans.docx")
    assert "document.encrypted" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


@pytest.mark.parametrize(
    ("body", "finding"),
    [
        (b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> ", "pdf.javascript"),
        (b"/OpenAction 3 0 R ", "pdf.open_action"),
        (b"/AA << /O << /S /Named /N /Print >> >> ", "pdf.additional_actions"),
        (b"/OpenAction << /S /Launch /F (cmd.exe) >> ", "pdf.launch"),
        (b"/Names << /EmbeddedFiles << /Names [(a.exe) 5 0 R] >> >> ", "pdf.embedded_file"),
        (b"/OpenAction << /S /J#61vaScr#69pt /JS (x) >> ", "pdf.javascript"),
        (b"/#4Fpen#41ction 3 0 R ", "pdf.open_action"),
    ],
)
def test_pdf_actions_are_suspicious(scanner: Scanner, body: bytes, finding: str) -> None:
    result = scanner.scan_bytes(pdf(body), "doc.pdf")
    assert finding in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


def test_hex_escaped_pdf_names_are_reported_as_obfuscation(scanner: Scanner) -> None:
    result = scanner.scan_bytes(pdf(b"/OpenAction << /S /J#61vaScript /JS (x) >> "), "a.pdf")
    obfuscated = [f for f in result.findings if f.id == "pdf.obfuscated_name"]
    assert obfuscated and obfuscated[0].severity is Severity.HIGH
    assert "JavaScript" in obfuscated[0].description


def test_plain_pdf_is_clean_and_near_misses_do_not_fire(scanner: Scanner) -> None:
    assert scanner.scan_bytes(pdf(), "a.pdf").verdict is Verdict.CLEAN
    # "JavaScript" as text in a string, and a longer name, are not the action names.
    near = pdf(b"/Title (JavaScript guide) /JSONData 1 /AAA 2 ")
    assert scanner.scan_bytes(near, "a.pdf").verdict is Verdict.CLEAN


def test_encrypted_pdf_is_unscannable(scanner: Scanner) -> None:
    result = scanner.scan_bytes(pdf(extra_trailer=b"/Encrypt 9 0 R "), "locked.pdf")
    assert "document.encrypted" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS
