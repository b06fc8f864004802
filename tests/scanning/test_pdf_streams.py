"""PDF action names hidden in Flate-compressed object streams, and the inflation limits."""

from __future__ import annotations

import random
import struct
import tracemalloc
import zlib

import pytest

from secops.scanning import Scanner, Severity, Verdict, documents
from secops.scanning.documents import pdf_findings
from tests.scanning.conftest import ids

CATALOG = b"<< /Type /Catalog /Pages 3 0 R /OpenAction 5 0 R >>"
PAGES = b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] /Contents 9 0 R >>"


def object_stream(objects: dict[int, bytes]) -> tuple[bytes, int]:
    """The decoded content of an object stream holding ``objects``: ``(content, /First)``."""
    offsets, bodies, offset = [], [], 0
    for number, body in objects.items():
        offsets.append(b"%d %d" % (number, offset))
        bodies.append(body)
        offset += len(body) + 1
    header = b" ".join(offsets) + b"\n"
    return header + b"\n".join(bodies), len(header)


def pdf_with_streams(streams: list[tuple[bytes, bytes]], *, body_objects: bytes = b"") -> bytes:
    """A PDF 1.5 whose objects live in the given streams: ``[(dictionary entries, raw
    stream bytes)]``, numbered from 10 (``/Length`` is added unless the entries have
    one); ``body_objects`` go into the file body as is."""
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    out += body_objects
    for number, (entries, raw) in enumerate(streams, 10):
        length = b"" if b"/Length" in entries else b" /Length %d" % len(raw)
        out += b"%d 0 obj\n<< %s%s >>\nstream\r\n" % (number, entries, length)
        out += raw + b"\r\nendstream\nendobj\n"
    out += b"trailer\n<< /Size 40 /Root 2 0 R >>\nstartxref\n0\n%%EOF\n"
    return bytes(out)


def hidden(action: bytes, *, filter_: bytes = b"/FlateDecode", extra: bytes = b"/Type /ObjStm",
           raw: bytes | None = None) -> bytes:
    """Catalog, pages, page and action dictionary (object 5) in one object stream."""
    content, first = object_stream({2: CATALOG, 3: PAGES, 4: PAGE, 5: action})
    entries = b"%s /N 4 /First %d /Filter %s" % (extra, first, filter_)
    return pdf_with_streams([(entries, zlib.compress(content) if raw is None else raw)])


JS_ACTION = b"<< /Type /Action /S /JavaScript /JS (app.alert(1)) >>"


def test_javascript_in_an_object_stream_is_found(scanner: Scanner) -> None:
    data = hidden(JS_ACTION)
    assert b"JavaScript" not in data and b"OpenAction" not in data  # really hidden
    result = scanner.scan_bytes(data, "invoice.pdf")
    assert {"pdf.javascript", "pdf.open_action"} <= ids(result)
    assert result.verdict is Verdict.SUSPICIOUS
    js = next(f for f in result.findings if f.id == "pdf.javascript")
    assert js.description == "PDF contains JavaScript (in a compressed object stream)"
    assert js.severity is Severity.MEDIUM


def test_launch_in_an_object_stream_is_high_severity() -> None:
    findings = pdf_findings(hidden(b"<< /S /Launch /F (cmd.exe) /NewWindow true >>"), None)
    launch = [f for f in findings if f.id == "pdf.launch"]
    assert len(launch) == 1 and launch[0].severity is Severity.HIGH


def test_embedded_file_in_an_object_stream_is_found() -> None:
    action = b"<< /EmbeddedFiles << /Names [(invoice.exe) 6 0 R] >> >>"  # a /Names tree
    assert "pdf.embedded_file" in {f.id for f in pdf_findings(hidden(action), None)}


def test_hex_escaped_name_in_an_object_stream_is_obfuscation() -> None:
    findings = pdf_findings(hidden(b"<< /S /J#61vaScr#69pt /J#53 (x) >>"), None)
    by_id = {f.id: f for f in findings}
    assert "pdf.javascript" in by_id
    assert by_id["pdf.obfuscated_name"].severity is Severity.HIGH
    assert "JavaScript" in by_id["pdf.obfuscated_name"].description
    assert "compressed object stream" in by_id["pdf.obfuscated_name"].description


@pytest.mark.parametrize(
    ("filter_", "extra"),
    [
        (b"/FlateDecode", b"/Type /ObjStm"),
        (b"/Fl", b"/Type /ObjStm"),
        (b"[/FlateDecode]", b"/Type /ObjStm"),
        (b"[ /Fl ]", b"/Type /ObjStm"),
        (b"/Fl#61teDecode", b"/Type /Obj#53tm"),  # escaped names in the stream dictionary
        (b"/FlateDecode", b""),  # no /Type: readers go by /N and /First
        (b"/FlateDecode /DecodeParms << /Predictor 1 >>", b"/Type /ObjStm"),
    ],
)
def test_flate_spellings_and_object_stream_markers(filter_: bytes, extra: bytes) -> None:
    findings = pdf_findings(hidden(JS_ACTION, filter_=filter_, extra=extra), None)
    assert "pdf.javascript" in {f.id for f in findings}
    assert "pdf.limit" not in {f.id for f in findings}


def test_a_finding_in_the_raw_bytes_and_in_a_stream_is_reported_once() -> None:
    content, first = object_stream({5: JS_ACTION})
    raw_js = b"6 0 obj\n<< /S /JavaScript /JS (1) >>\nendobj\n"
    data = pdf_with_streams([(b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % first,
                              zlib.compress(content))], body_objects=raw_js)
    js = [f for f in pdf_findings(data, "a.zip!x.pdf") if f.id == "pdf.javascript"]
    assert len(js) == 1
    assert js[0].description == "PDF contains JavaScript" and js[0].location == "a.zip!x.pdf"


def page_content(rng: random.Random) -> bytes:
    lines = [b"BT /F1 12 Tf 72 712 Td"]
    for _ in range(2000):
        word = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(8))
        lines.append(b"(%s) Tj 0 -14 Td" % word)
    # Resource names in content are operands, not actions; content is never inflated.
    lines.append(b"ET /JS gs /AA cs /Launch Do")
    return b"\n".join(lines)


def test_benign_pdf_with_compressed_content_and_object_streams_is_clean(scanner: Scanner) -> None:
    rng = random.Random(3)
    content, first = object_stream({
        2: b"<< /Type /Catalog /Pages 3 0 R >>", 3: PAGES, 4: PAGE,
        6: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FirstChar 32 >>",
    })
    data = pdf_with_streams([
        (b"/Type /ObjStm /N 4 /First %d /Filter /FlateDecode" % first, zlib.compress(content)),
        (b"/Filter /FlateDecode", zlib.compress(page_content(rng))),
        (b"/Subtype /Image /Width 64 /Height 64 /Filter /FlateDecode",
         zlib.compress(rng.randbytes(64 * 64 * 3))),
        (b"/Type /XRef /W [1 2 1] /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >>",
         zlib.compress(rng.randbytes(200))),
    ])
    assert pdf_findings(data, None) == []
    assert scanner.scan_bytes(data, "report.pdf").verdict is Verdict.CLEAN


def zlib_bomb(gib: int = 1) -> bytes:
    """A valid zlib stream of ``gib`` GiB of zeros (about 1 MB), built without ever
    holding more than 1 MiB: full-flushed deflate segments are self-contained."""
    zero = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(zero) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(1024):
        adler = zlib.adler32(zero, adler)  # the same for every GiB of zeros
    final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    return b"\x78\xda" + segment * (1024 * gib) + final + struct.pack(">I", adler)


def test_zlib_bomb_in_an_object_stream_stops_at_the_cap(scanner: Scanner) -> None:
    bomb = zlib_bomb()
    assert len(bomb) < 2_000_000
    content, first = object_stream({5: JS_ACTION})
    data = pdf_with_streams([
        (b"/Type /ObjStm /N 1 /First 10 /Filter /FlateDecode", bomb),
        (b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % first, zlib.compress(content)),
    ])
    tracemalloc.start()
    try:
        findings = pdf_findings(data, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # At most one stream's cap (plus one output step and growth slack), not a GiB.
    assert peak < 2 * documents.PDF_MAX_STREAM_BYTES, peak
    limit = [f for f in findings if f.id == "pdf.limit"]
    assert len(limit) == 1 and limit[0].severity is Severity.MEDIUM
    assert "more than 8 MiB" in limit[0].description
    # The stream after the bomb is still inspected.
    assert "pdf.javascript" in {f.id for f in findings}
    # The bomb alone is enough for a suspicious verdict: it was not fully inspected.
    alone = pdf_with_streams([(b"/Type /ObjStm /N 1 /First 10 /Filter /FlateDecode", bomb)])
    result = scanner.scan_bytes(alone, "bomb.pdf")
    assert ids(result) >= {"pdf.limit"} and result.verdict is Verdict.SUSPICIOUS


def test_many_large_streams_stop_at_the_total_cap() -> None:
    per_stream = documents.PDF_MAX_STREAM_BYTES
    zeros = zlib.compress(bytes(per_stream // 2))  # 4 MiB each, under the per-stream cap
    count = documents.PDF_MAX_TOTAL_BYTES // (per_stream // 2) + 2
    data = pdf_with_streams([(b"/Type /ObjStm /N 1 /First 10 /Filter /FlateDecode", zeros)] * count)
    findings = pdf_findings(data, None)
    assert [f.id for f in findings] == ["pdf.limit"]
    assert "MiB inflated in all" in findings[0].description


def test_object_stream_count_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "PDF_MAX_OBJECT_STREAMS", 3)
    content, first = object_stream({5: b"<< /Type /Annot /Subtype /Link >>"})
    stream = (b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % first, zlib.compress(content))
    assert pdf_findings(pdf_with_streams([stream] * 3), None) == []
    findings = pdf_findings(pdf_with_streams([stream] * 4), None)
    assert [f.id for f in findings] == ["pdf.limit"]
    assert "more than 3 object streams" in findings[0].description


@pytest.mark.parametrize("raw", [
    b"\x78\x9c" + random.Random(5).randbytes(5000),
    random.Random(6).randbytes(5000),
    zlib.compress(b"3 0 << /Type /Pages >>")[:-9],
    b"",
], ids=["garbage-after-header", "no-header", "truncated", "empty"])
def test_corrupt_object_stream_is_skipped(raw: bytes) -> None:
    content, first = object_stream({5: JS_ACTION})
    data = pdf_with_streams([
        (b"/Type /ObjStm /N 1 /First 10 /Filter /FlateDecode", raw),
        (b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % first, zlib.compress(content)),
    ])
    findings = pdf_findings(data, None)
    assert {f.id for f in findings} == {"pdf.javascript"}  # the good stream still counts


def test_a_wrong_checksum_does_not_hide_a_stream() -> None:
    content, _ = object_stream({2: CATALOG, 3: PAGES, 4: PAGE, 5: JS_ACTION})
    raw = zlib.compress(content)[:-4] + b"\xff\xff\xff\xff"  # Adler-32 broken
    with pytest.raises(zlib.error):
        zlib.decompress(raw)
    assert "pdf.javascript" in {f.id for f in pdf_findings(hidden(JS_ACTION, raw=raw), None)}


def test_output_before_corrupt_data_is_still_checked() -> None:
    filler = b"(" + random.Random(7).randbytes(100_000).hex().encode() + b")"
    content, _ = object_stream({5: JS_ACTION, 6: filler})
    compressor = zlib.compressobj()
    # About 100 KB of good deflate data, then a block of the invalid type 3.
    raw = compressor.compress(content) + compressor.flush(zlib.Z_FULL_FLUSH) + b"\x07" * 64
    with pytest.raises(zlib.error, match="invalid block type"):
        zlib.decompressobj().decompress(raw)
    assert "pdf.javascript" in {f.id for f in pdf_findings(hidden(JS_ACTION, raw=raw), None)}


def test_endstream_inside_the_data_and_an_indirect_length() -> None:
    """A stored deflate block may contain the word ``endstream``: with an indirect (or
    wrong) ``/Length`` the body is read on until the zlib data ends."""
    decoy = b"% endstream endobj padding " * 4
    content, first = object_stream({5: JS_ACTION})
    stored = zlib.compressobj(0, zlib.DEFLATED, -15)
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = (b"\x78\x01" + stored.compress(decoy) + stored.flush(zlib.Z_FULL_FLUSH)
           + packed.compress(content) + packed.flush()
           + struct.pack(">I", zlib.adler32(decoy + content)))
    assert zlib.decompress(raw) == decoy + content and b"endstream" in raw
    entries = b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % (len(decoy) + first)
    length = b"30 0 obj\n%d\nendobj\n" % len(raw)
    for given in (b" /Length 30 0 R", b" /Length 7", b" /Length %d" % len(raw), b""):
        data = pdf_with_streams([(entries + given, raw)], body_objects=length)
        assert {f.id for f in pdf_findings(data, None)} == {"pdf.javascript"}, given


@pytest.mark.parametrize("filter_", [
    b"[/ASCIIHexDecode /FlateDecode]",
    b"/LZWDecode",
    b"12 0 R",
    b"/FlateDecode /DecodeParms << /Predictor 12 /Columns 5 >>",
])
def test_object_streams_that_are_not_decoded_are_reported(filter_: bytes) -> None:
    findings = pdf_findings(hidden(JS_ACTION, filter_=filter_, raw=b"\x00" * 64), None)
    limit = [f for f in findings if f.id == "pdf.limit"]
    assert len(limit) == 1 and "not decoded" in limit[0].description


def test_unfiltered_object_stream_is_read_as_raw_bytes() -> None:
    content, first = object_stream({5: JS_ACTION})
    data = pdf_with_streams([(b"/Type /ObjStm /N 1 /First %d" % first, content)])
    assert {f.id for f in pdf_findings(data, None)} == {"pdf.javascript"}
