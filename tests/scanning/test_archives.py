"""Archive recursion: nesting, limits, bombs, unsafe names and links, encryption."""

from __future__ import annotations

import gzip
import io
import lzma
import stat
import tarfile
import tracemalloc
import warnings
import zipfile

import magic
import py7zr
import pytest

from secops.scanning import ScanConfig, Scanner, Verdict
from tests.scanning.conftest import ids, located
from tests.scanning.corpus import (
    EICAR,
    duplicate_zip,
    encrypted_zip,
    lying_size_zip,
    nested_zip,
    overlapping_zip,
    png,
    tar_bytes,
    tar_special,
    unexpanded_containers,
    zip_bytes,
    zip_with_mode,
)

EICAR_ID = "yara.SECOPS_EICAR_Test_File"


def sevenzip(members: list[tuple[str, bytes]], password: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w", password=password,
                            header_encryption=bool(password)) as archive:
        for name, data in members:
            archive.writestr(data, name)
    return buffer.getvalue()


def test_nested_location_names_the_path(scanner: Scanner) -> None:
    inner = zip_bytes([("eicar.com", EICAR)])
    outer = zip_bytes([("inner/a.zip", inner), ("readme.txt", b"hello")])
    result = scanner.scan_bytes(outer, "outer.zip")
    assert result.verdict is Verdict.MALICIOUS
    assert located(result, EICAR_ID) == {"outer.zip!inner/a.zip!eicar.com"}


@pytest.mark.parametrize(
    ("name", "data", "location"),
    [
        ("t.tar", tar_bytes([("x/eicar.com", EICAR)]), "t.tar!x/eicar.com"),
        ("t.tar.gz", tar_bytes([("eicar.com", EICAR)], "w:gz"), "t.tar.gz!eicar.com"),
        ("t.tar.bz2", tar_bytes([("eicar.com", EICAR)], "w:bz2"), "t.tar.bz2!eicar.com"),
        ("t.tar.xz", tar_bytes([("eicar.com", EICAR)], "w:xz"), "t.tar.xz!eicar.com"),
        ("eicar.com.gz", gzip.compress(EICAR, mtime=0), "eicar.com.gz!eicar.com"),
        ("eicar.com.xz", lzma.compress(EICAR), "eicar.com.xz!eicar.com"),
        ("e.7z", sevenzip([("d/eicar.com", EICAR)]), "e.7z!d/eicar.com"),
        ("e.zip", zip_bytes([("eicar.com", EICAR)], zipfile.ZIP_BZIP2), "e.zip!eicar.com"),
        ("l.zip", zip_bytes([("eicar.com", EICAR)], zipfile.ZIP_LZMA), "l.zip!eicar.com"),
        ("s.zip", zip_bytes([("eicar.com", EICAR)], zipfile.ZIP_STORED), "s.zip!eicar.com"),
    ],
)
def test_every_container_format_is_expanded(
    scanner: Scanner, name: str, data: bytes, location: str
) -> None:
    result = scanner.scan_bytes(data, name)
    assert located(result, EICAR_ID) == {location}, result.findings


def test_depth_limit_stops_expansion(scanner: Scanner) -> None:
    shallow = scanner.scan_bytes(nested_zip(5, EICAR), "n.zip")
    assert EICAR_ID in ids(shallow) and "archive.limit.depth" not in ids(shallow)
    deep = scanner.scan_bytes(nested_zip(7, EICAR), "n.zip")
    assert EICAR_ID not in ids(deep)
    assert "archive.limit.depth" in ids(deep)
    assert deep.verdict is Verdict.SUSPICIOUS


@pytest.mark.parametrize(
    ("name", "expected"),
    [("../../etc/cron.d/x", "archive.path_traversal"), ("a/../../b", "archive.path_traversal"),
     ("..\\windows\\x.dll", "archive.path_traversal"), ("/etc/passwd", "archive.absolute_path"),
     ("C:\\Windows\\x.dll", "archive.absolute_path")],
)
def test_zip_slip_names_are_findings(scanner: Scanner, name: str, expected: str) -> None:
    for data in (zip_bytes([(name, b"payload")]), tar_bytes([(name, b"payload")])):
        result = scanner.scan_bytes(data, "slip")
        assert expected in ids(result)
        assert result.verdict is Verdict.SUSPICIOUS


def test_links_and_devices_are_findings_never_followed(scanner: Scanner) -> None:
    archive = tar_bytes([
        tar_special("link", tarfile.SYMTYPE, "/etc/shadow"),
        tar_special("hard", tarfile.LNKTYPE, "../../etc/passwd"),
        tar_special("dev", tarfile.CHRTYPE),
        tar_special("fifo", tarfile.FIFOTYPE),
    ])
    result = scanner.scan_bytes(archive, "links.tar")
    assert {"archive.symlink", "archive.hardlink", "archive.device"} <= ids(result)
    zipped = scanner.scan_bytes(zip_with_mode("ln", b"/etc/shadow", stat.S_IFLNK | 0o777), "z")
    assert "archive.symlink" in ids(zipped)


def test_encrypted_archives_are_unscannable_and_suspicious(scanner: Scanner) -> None:
    result = scanner.scan_bytes(encrypted_zip(), "enc.zip")
    assert "archive.encrypted" in ids(result) and result.verdict is Verdict.SUSPICIOUS
    seven = scanner.scan_bytes(sevenzip([("a.txt", b"secret")], password="pw"), "enc.7z")
    assert "archive.encrypted" in ids(seven) and seven.verdict is Verdict.SUSPICIOUS


def test_ratio_bomb_is_refused_before_inflating(scanner: Scanner) -> None:
    bomb = zip_bytes([("zeros.bin", b"\0" * (20 << 20))])
    result = scanner.scan_bytes(bomb, "bomb.zip")
    assert "archive.bomb" in ids(result) and result.verdict is Verdict.SUSPICIOUS


def test_gzip_bomb_with_lying_isize_stops_at_the_cap() -> None:
    raw = gzip.compress(b"\0" * (30 << 20))
    lying = raw[:-4] + (1000).to_bytes(4, "little")  # claims 1000 bytes
    scanner = Scanner(ScanConfig(max_total_bytes=4 << 20))
    tracemalloc.start()
    result = scanner.scan_bytes(lying, "bomb.gz")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert ids(result) & {"archive.bomb", "archive.limit.total_bytes"}
    assert result.verdict is Verdict.SUSPICIOUS
    assert peak < 16 << 20  # never near the 30 MiB the stream would produce


def test_declared_size_lie_is_caught_while_streaming(scanner: Scanner) -> None:
    result = scanner.scan_bytes(lying_size_zip(b"A" * 5000, 100), "lie.zip")
    assert "archive.size_mismatch" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


def test_total_bytes_budget_spans_all_levels() -> None:
    members = [(f"f{i}.bin", bytes([i]) * 300_000) for i in range(10)]
    data = zip_bytes([("inner.zip", zip_bytes(members))])
    scanner = Scanner(ScanConfig(max_total_bytes=1_000_000, max_ratio=10_000))
    result = scanner.scan_bytes(data, "big.zip")
    assert "archive.limit.total_bytes" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


def test_entry_count_limit_is_checked_before_inflating() -> None:
    data = zip_bytes([(f"{i}.txt", b"x") for i in range(50)])
    result = Scanner(ScanConfig(max_entries=10)).scan_bytes(data, "many.zip")
    assert "archive.limit.entries" in ids(result)
    tar = Scanner(ScanConfig(max_entries=10)).scan_bytes(
        tar_bytes([(f"{i}.txt", b"x") for i in range(50)]), "many.tar")
    assert "archive.limit.entries" in ids(tar)


def test_overlapping_and_duplicate_entries_are_findings(scanner: Scanner) -> None:
    overlap = scanner.scan_bytes(overlapping_zip(), "overlap.zip")
    assert any("overlap" in f.description for f in overlap.findings)
    assert overlap.verdict is Verdict.SUSPICIOUS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dup = scanner.scan_bytes(duplicate_zip(), "dup.zip")
    assert any("duplicate" in f.description for f in dup.findings)


def test_polyglot_image_with_appended_zip(scanner: Scanner) -> None:
    data = png() + zip_bytes([("eicar.com", EICAR)])
    result = scanner.scan_bytes(data, "cat.png")
    assert "polyglot.appended_archive" in ids(result)
    assert located(result, EICAR_ID) == {"cat.png!eicar.com"}
    assert scanner.scan_bytes(png(), "cat.png").verdict is Verdict.CLEAN


def test_corrupt_archives_do_not_crash(scanner: Scanner) -> None:
    good = zip_bytes([("a.txt", b"hello " * 100)])
    for data in (good[:40], good[:-10], b"PK\x03\x04" + b"\xff" * 100,
                 gzip.compress(b"x" * 1000)[:30], b"7z\xbc\xaf\x27\x1c" + b"\0" * 40):
        result = scanner.scan_bytes(data, "broken")
        assert result.verdict in (Verdict.CLEAN, Verdict.SUSPICIOUS)


def test_both_copies_of_a_duplicate_name_are_scanned(scanner: Scanner) -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("doc.txt", b"harmless")
            archive.writestr("doc.txt", EICAR)
    result = scanner.scan_bytes(buffer.getvalue(), "dup.zip")
    assert located(result, EICAR_ID) == {"dup.zip!doc.txt"}


def test_polyglot_pdf_with_appended_7z(scanner: Scanner) -> None:
    from tests.scanning.corpus import pdf

    result = scanner.scan_bytes(pdf() + sevenzip([("eicar.com", EICAR)]), "doc.pdf")
    assert "polyglot.appended_archive" in ids(result)
    assert located(result, EICAR_ID) == {"doc.pdf!eicar.com"}


def test_mutated_archives_never_escape_the_engine(scanner: Scanner) -> None:
    """Cheap fuzzing: flipped bytes in every container format give a result, never a crash."""
    import random

    rng = random.Random(7)
    seeds = [
        zip_bytes([("a.txt", b"hello " * 50), ("b/c.bin", bytes(range(256)))]),
        tar_bytes([("a.txt", b"hello " * 50)], "w:gz"),
        tar_bytes([("a.txt", b"hello " * 50)]),
        sevenzip([("a.txt", b"hello " * 50)]),
        lzma.compress(b"hello " * 50),
        png() + zip_bytes([("x.txt", b"x")]),
    ]
    for seed in seeds:
        for _ in range(40):
            mutated = bytearray(seed)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            cut = rng.choice([len(mutated), rng.randrange(1, len(mutated) + 1)])
            result = scanner.scan_bytes(bytes(mutated[:cut]), "fuzz.bin")
            assert result.verdict in (Verdict.CLEAN, Verdict.SUSPICIOUS, Verdict.MALICIOUS)


def test_inflate_limits_members_and_truncation():
    """The shared decompression loop: output cap, ratio stop, gzip members, cut streams."""
    import gzip
    import os
    import zlib

    from secops.scanning.ziparchive import inflate

    def gz() -> zlib._Decompress:
        return zlib.decompressobj(31)

    first, second = os.urandom(300_000), b"hello " * 100_000
    both = inflate(gzip.compress(first) + gzip.compress(second), gz, 10**9, 1000, 1 << 20)
    assert both.data == first + second and not both.exceeded and both.error is None
    cut = inflate(gzip.compress(first)[:-100], gz, 10**9, 1000, 1 << 20)
    assert 0 < len(cut.data) < len(first) and not cut.exceeded
    bomb = inflate(gzip.compress(b"\0" * 50_000_000), gz, 10**9, 100, 1 << 20)
    assert bomb.ratio_exceeded and len(bomb.data) <= 8 << 20
    capped = inflate(gzip.compress(b"\0" * 5_000_000), gz, 1_000_000, 10**6, 1 << 30)
    assert capped.exceeded and len(capped.data) == 1_000_000
    assert inflate(b"\x1f\x8b\x08\x00garbage" * 10, gz, 10**9, 1000, 1 << 20).error
    raw = os.urandom(3_000_000)
    assert inflate(zlib.compress(raw)[2:-4], lambda: zlib.decompressobj(-15), 10**9, 1000,
                   1 << 20).data == raw


UNEXPANDED = unexpanded_containers()


@pytest.mark.parametrize("name", sorted(UNEXPANDED))
def test_containers_that_are_not_expanded_are_never_clean_by_silence(
    scanner: Scanner, name: str
) -> None:
    data, mime = UNEXPANDED[name]
    if mime is not None:  # libmagic, shown the whole sample, agrees it is that format
        assert magic.from_buffer(data, mime=True) == mime
    result = scanner.scan_bytes(data, name)
    unsupported = [f for f in result.findings if f.id == "archive.unsupported"]
    assert [(f.severity.label, f.location) for f in unsupported] == [("medium", None)]
    # what the description says was read: images store their members as they are, so
    # their bytes went through YARA; compressed containers' did not
    stored = name.endswith((".iso", ".vhd", ".vhdx"))
    assert ("checked only as part of the whole file" in unsupported[0].description) is stored
    assert result.verdict is Verdict.SUSPICIOUS


def test_a_container_that_is_not_expanded_is_named_inside_an_archive(scanner: Scanner) -> None:
    rar, _ = UNEXPANDED["b.rar"]
    result = scanner.scan_bytes(zip_bytes([("mail/invoice.rar", rar)]), "outer.zip")
    assert located(result, "archive.unsupported") == {"outer.zip!mail/invoice.rar"}
    assert result.verdict is Verdict.SUSPICIOUS


@pytest.mark.parametrize(
    "data",
    [
        b"070701,2024-01-02,Jane Roe\n" * 8,  # a CSV opening with cpio's magic digits
        b"LZIP is a compressor\n",
        b"hsqs" + bytes(60),  # SquashFS's magic without a version 4 superblock
        b"\x1f\x9d\x01 not a compress header",
        b"\x60\xea" + bytes(20),  # ARJ's two-byte magic without a main header
        b"Rar!\x1a\x08 close but not RAR",
    ],
)
def test_look_alikes_of_unexpanded_containers_are_not_named(scanner: Scanner, data: bytes) -> None:
    result = scanner.scan_bytes(data, "data.bin")
    assert not {"archive.unsupported", "archive.corrupt"} & ids(result)
