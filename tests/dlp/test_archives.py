"""Archives inside documents, through the scanning engine's safe walker."""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zipfile
from pathlib import Path

from secops.cli.dlp import run_scan
from secops.dlp import Classifier, Limits
from secops.dlp.archives import SafeArchiveWalker
from secops.dlp.errors import ArchiveError, ExtractionError
from secops.errors import InvalidInput, SecOpsError
from tests.scanning.corpus import ar_bytes, cpio_bytes

CARD_CSV = b"id,name,card\n1,Jane Roe,4111 1111 1111 1111\n"


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _targz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _classifier(walker: SafeArchiveWalker | None = None) -> Classifier:
    return Classifier(archive_walker=walker or SafeArchiveWalker())


def test_zip_with_a_csv_holding_a_card_number() -> None:
    result = _classifier().scan_bytes(_zip({"export/customers.csv": CARD_CSV}), "a.zip")
    assert [(f.type, f.part) for f in result.findings] == \
        [("credit_card", "export/customers.csv/text")]
    assert result.classification == "restricted"
    assert not result.errors and not result.truncated


def test_nested_archives_name_the_inner_member() -> None:
    inner = _zip({"deep/cards.csv": CARD_CSV})
    outer = _targz({"bundle/inner.zip": inner, "readme.txt": b"nothing here"})
    result = _classifier().scan_bytes(outer, "outer.tar.gz")
    assert [(f.type, f.part) for f in result.findings] == \
        [("credit_card", "bundle/inner.zip!deep/cards.csv/text")]


def test_documents_inside_archives_are_extracted_not_expanded() -> None:
    docx = _zip({"word/document.xml": b"<w:document><w:p><w:r><w:t>ssn 536-22-8874</w:t>"
                 b"</w:r></w:p></w:document>"})
    result = _classifier().scan_bytes(_zip({"letters/letter.docx": docx}), "a.zip")
    assert [(f.type, f.part) for f in result.findings] == \
        [("us_ssn", "letters/letter.docx/word/document.xml")]


def test_ratio_bomb_is_reported_as_truncated_not_a_crash() -> None:
    bomb = _zip({"zeros.bin": b"\0" * (4 << 20), "cards.csv": CARD_CSV})
    result = _classifier().scan_bytes(bomb, "bomb.zip")
    assert result.truncated
    assert any("compression ratio" in e and "zeros.bin" in e for e in result.errors)
    assert [f.type for f in result.findings] == ["credit_card"]  # the rest is still read


def test_total_size_limit_stops_expansion() -> None:
    members = {f"part{i}.txt": bytes([65 + i % 26]) * 300_000 for i in range(20)}
    walker = SafeArchiveWalker(max_total_bytes=1_000_000, ratio_min_bytes=1 << 30)
    result = _classifier(walker).scan_bytes(_zip(members, zipfile.ZIP_STORED), "big.zip")
    assert result.truncated
    assert any("bytes" in e for e in result.errors)


def test_nesting_limit_stops_expansion() -> None:
    data = _zip({"cards.csv": CARD_CSV})
    for level in range(5):
        data = _zip({f"level{level}.zip": data})
    result = _classifier(SafeArchiveWalker(max_depth=3)).scan_bytes(data, "deep.zip")
    assert result.truncated and result.findings == []
    assert any("nested deeper than 3" in e for e in result.errors)


def test_damaged_archive_is_an_error_entry() -> None:
    data = _zip({"cards.csv": CARD_CSV})
    broken = data[:40] + b"\xff" * 20 + data[60:]
    result = _classifier().scan_bytes(broken, "broken.zip")
    assert result.errors and not result.truncated


def test_without_a_walker_archives_are_an_error_entry() -> None:
    result = Classifier().scan_bytes(_targz({"a.csv": CARD_CSV}), "a.tar.gz")
    assert result.findings == [] and any("no walker" in e for e in result.errors)


def test_walker_limits_follow_the_dlp_limits() -> None:
    walker = SafeArchiveWalker.from_limits(Limits(max_bytes=1000, max_parts=7, max_depth=2))
    assert (walker.max_total_bytes, walker.max_entries, walker.max_depth) == (1000, 7, 2)


def test_errors_are_secops_errors() -> None:
    error = ArchiveError(["x"], truncated=True)
    assert isinstance(error, ExtractionError) and isinstance(error, InvalidInput)
    assert isinstance(error, SecOpsError) and isinstance(error, ValueError)


def test_local_cli_expands_archives_by_default(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(_zip({"customers.csv": CARD_CSV}))
    (tmp_path / "b.zip").write_bytes(_zip({"zeros.bin": b"\0" * (4 << 20)}))
    (tmp_path / "c.txt").write_text("card 4111 1111 1111 1111\n")
    out = io.StringIO()
    status = run_scan([str(tmp_path)], as_json=True, out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 2  # b.zip was read only in part: the run says so
    assert lines[0]["findings"][0]["type"] == "credit_card"  # found inside the archive
    assert lines[1]["findings"] == []
    for line in lines:  # exactly the contract keys, whatever the format
        assert list(line) == ["path", "classification", "findings"]
        for finding in line["findings"]:
            assert list(finding) == ["type", "category", "start", "end", "score"]
    out = io.StringIO()
    assert run_scan([str(tmp_path / "a.zip")], as_json=True, out=out) == 1


def test_compressed_containers_that_are_not_expanded_are_errors_not_text() -> None:
    rar = b"Rar!\x1a\x07\x01\x00" + bytes(range(256)) * 4
    alone = _classifier().scan_bytes(rar, "cards.rar")
    assert alone.errors == ["cards.rar: RAR 5 archive not read (format not expanded)"]
    assert not alone.findings
    inside = _classifier().scan_bytes(_zip({"b/cards.rar": rar, "a.csv": CARD_CSV}), "x.zip")
    assert inside.errors == ["b/cards.rar/: RAR 5 archive not read (format not expanded)"]
    assert [f.part for f in inside.findings] == ["a.csv/text"]


def test_ar_and_cpio_members_are_classified_one_by_one() -> None:
    csv = ("cards.csv", CARD_CSV)
    notes = ("notes.txt", b"nothing to see\n")
    for data, name in ((ar_bytes([notes, csv]), "bundle.a"),
                       (cpio_bytes([(n, d, stat.S_IFREG | 0o644) for n, d in (notes, csv)]),
                        "initrd.cpio")):
        result = _classifier().scan_bytes(data, name)
        assert not result.errors
        assert [(f.type, f.part) for f in result.findings] == [("credit_card", "cards.csv/text")]
