"""Untrusted files that cost quadratic work, and the worker's time limit during expansion.

The two inputs below held a worker until the job's time limit before (each member of a
many-member gzip copied the rest of the input; the OOXML run regexes rescanned to the
end of the member for every unclosed tag); the timeouts only stop a regression from
hanging the suite.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import zipfile
import zlib
from types import FrameType

import pytest

from secops.dlp.extract import extract
from secops.scanning import ScanConfig, Scanner
from secops.scanning.ziparchive import inflate
from tasks.base import JobTimeLimit
from tests.scanning.conftest import ids
from tests.scanning.corpus import EICAR

EICAR_ID = "yara.SECOPS_EICAR_Test_File"
EMPTY_MEMBER = gzip.compress(b"", mtime=0)


@pytest.mark.timeout(60)
def test_many_empty_gzip_members_are_counted_against_the_entry_budget():
    data = EMPTY_MEMBER * 200_000  # 4 MB of empty members
    result = Scanner(ScanConfig(max_entries=1_000)).scan_bytes(data, "empty.gz")
    assert "archive.limit.entries" in ids(result)
    # with a budget large enough for all of them, they are read to the end, in linear time
    inflated = inflate(data, lambda: zlib.decompressobj(47), 1 << 20, 200.0,
                       1 << 20)
    assert (inflated.members, inflated.data, inflated.error) == (200_000, b"", None)


def test_gzip_members_are_joined_and_scanned():
    parts = [EICAR[:20], EICAR[20:40], EICAR[40:]]
    data = b"".join(gzip.compress(p, mtime=0) for p in parts)
    result = Scanner(ScanConfig(max_entries=10)).scan_bytes(data, "split.gz")
    assert EICAR_ID in ids(result)
    assert "archive.limit.entries" not in ids(result)
    # three members: three entries of a budget of two is too many
    result = Scanner(ScanConfig(max_entries=2)).scan_bytes(data, "split.gz")
    assert "archive.limit.entries" in ids(result) and EICAR_ID not in ids(result)


def _docx(document_xml: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:  # no ratio limit hit
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", document_xml)
    return buffer.getvalue()


@pytest.mark.timeout(60)
def test_unclosed_ooxml_tags_are_read_in_linear_time():
    xml = "<w:t>4111 1111 1111 1111</w:t></w:p>" + "<w:t " * 300_000  # no '>' after
    out = extract(_docx(xml), "hostile.docx")
    assert [(p.name, p.text) for p in out.parts] == [("word/document.xml",
                                                      "4111 1111 1111 1111\n")]


TimeLimit = JobTimeLimit  # what a worker's soft time limit raises, from a signal handler


def _inside(frame: FrameType | None, name: str) -> bool:
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def test_the_time_limit_raised_during_expansion_is_not_swallowed():
    data = gzip.compress(os.urandom(12 << 20).hex().encode(), compresslevel=1, mtime=0)
    fired: list[bool] = []

    def handler(_signum: int, frame: FrameType | None) -> None:
        # Raise only once the scan is inside the decompression loop, as a soft time
        # limit arriving there would; otherwise look again a millisecond later.
        if _inside(frame, "inflate"):
            fired.append(True)
            raise TimeLimit()
        signal.setitimer(signal.ITIMER_REAL, 0.001)

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        with pytest.raises(TimeLimit):
            Scanner(ScanConfig()).scan_bytes(data, "big.gz", fatal=(TimeLimit,))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == [True]



def test_the_time_limit_raised_during_macro_analysis_is_not_swallowed():
    from tests.scanning.ole_builder import vba_project_ole

    document = vba_project_ole('Sub AutoOpen()\n  Shell "calc.exe"\nEnd Sub\n')
    scanner = Scanner(ScanConfig())
    fired: list[bool] = []

    def handler(_signum: int, frame: FrameType | None) -> None:
        # inside olevba, under the analysis's own ``except Exception``
        if _inside(frame, "analyze_macros") or _inside(frame, "detect_vba_macros"):
            fired.append(True)
            raise TimeLimit()
        signal.setitimer(signal.ITIMER_REAL, 0.0002)

    previous = signal.signal(signal.SIGALRM, handler)
    raised = False
    try:
        for _ in range(300):  # until the alarm lands inside the macro analysis once
            signal.setitimer(signal.ITIMER_REAL, 0.0002)
            try:
                scanner.scan_bytes(document, "invoice.doc", fatal=(TimeLimit,))
            except TimeLimit:
                raised = True
                break
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if fired:
                break  # it landed there and was swallowed
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert fired == [True] and raised
