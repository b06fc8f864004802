"""ar (Debian packages, static libraries) and cpio archives: expanded and scanned member
by member, with the same limits and name checks as zip and tar.

The archives are built in code and, where the real tools can read or write them
(binutils' ``ar``, GNU ``cpio``, ``dpkg-deb``; scripts/bootstrap.sh installs them), the
tools' own view is the reference: what they list is what the engine names.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from secops.scanning import ScanConfig, Scanner, Verdict
from secops.scanning.containers import AR, CPIO, archive_kind
from tests.scanning.conftest import ids, located
from tests.scanning.corpus import EICAR, ar_bytes, cpio_bytes, tar_bytes

EICAR_ID = "yara.SECOPS_EICAR_Test_File"
LONG = "a-member-name-longer-than-sixteen.com"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed (scripts/bootstrap.sh installs it)"
    return path


def ar_listing(data: bytes, tmp_path: Path) -> list[str]:
    archive = tmp_path / "lib.a"
    archive.write_bytes(data)
    out = subprocess.run([tool("ar"), "t", str(archive)], capture_output=True, check=True)
    return out.stdout.decode().split()


@pytest.mark.parametrize("names", ["gnu", "bsd"])
def test_ar_members_are_scanned_under_the_names_ar_lists(
    scanner: Scanner, tmp_path: Path, names: str
) -> None:
    data = ar_bytes([("notes.txt", b"hello\n"), (LONG, EICAR), ("odd", b"x")], names)
    assert archive_kind(data) == AR
    if names == "gnu":  # binutils reads GNU long names (BSD's are its own variant)
        assert ar_listing(data, tmp_path) == ["notes.txt", LONG, "odd"]
    result = scanner.scan_bytes(data, "lib.a")
    assert located(result, EICAR_ID) == {f"lib.a!{LONG}"}
    assert result.verdict is Verdict.MALICIOUS
    assert "archive.unsupported" not in ids(result)
    assert "archive.corrupt" not in ids(result)


def test_an_archive_made_by_ar_itself_is_read(scanner: Scanner, tmp_path: Path) -> None:
    (tmp_path / LONG).write_bytes(EICAR)
    (tmp_path / "b.o").write_bytes(b"\x7fELF" + bytes(60))
    subprocess.run([tool("ar"), "rcs", "lib.a", LONG, "b.o"], cwd=tmp_path, check=True)
    result = scanner.scan_bytes((tmp_path / "lib.a").read_bytes(), "lib.a")
    assert located(result, EICAR_ID) == {f"lib.a!{LONG}"}


def test_a_debian_package_is_scanned_down_to_its_files(
    scanner: Scanner, tmp_path: Path
) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@example.org>\n"
        "Description: demo\n")
    (root / "usr" / "share" / "demo").mkdir(parents=True)
    (root / "usr" / "share" / "demo" / "eicar.com").write_bytes(EICAR)
    subprocess.run([tool("dpkg-deb"), "--root-owner-group", "--build", str(root),
                    str(tmp_path / "demo.deb")], check=True, capture_output=True)
    result = scanner.scan_bytes((tmp_path / "demo.deb").read_bytes(), "demo.deb")
    # dpkg-deb compresses the data member with xz: ar, then xz, then tar
    assert located(result, EICAR_ID) == {"demo.deb!data.tar.xz!./usr/share/demo/eicar.com"}
    assert result.verdict is Verdict.MALICIOUS
    assert not {"archive.unsupported", "archive.corrupt"} & ids(result)


@pytest.mark.parametrize("fmt", ["newc", "odc"])
def test_cpio_members_are_scanned_under_the_names_cpio_lists(
    scanner: Scanner, tmp_path: Path, fmt: str
) -> None:
    members = [("etc", b"", stat.S_IFDIR | 0o755), ("etc/motd", b"welcome\n", stat.S_IFREG | 0o644),
               ("bin/eicar.com", EICAR, stat.S_IFREG | 0o755)]
    data = cpio_bytes(members, fmt)
    assert archive_kind(data) == CPIO
    archive = tmp_path / "a.cpio"
    archive.write_bytes(data)
    with archive.open("rb") as stdin:
        listing = subprocess.run([tool("cpio"), "-it", "--quiet"], stdin=stdin,
                                 capture_output=True, check=True).stdout.decode().split()
    assert listing == ["etc", "etc/motd", "bin/eicar.com"]
    result = scanner.scan_bytes(data, "a.cpio")
    assert located(result, EICAR_ID) == {"a.cpio!bin/eicar.com"}
    assert result.verdict is Verdict.MALICIOUS
    assert not {"archive.corrupt", "archive.unsupported"} & ids(result)


@pytest.mark.parametrize("fmt", ["newc", "odc", "crc"])
def test_an_archive_made_by_cpio_itself_reports_links_and_scans_files(
    scanner: Scanner, tmp_path: Path, fmt: str
) -> None:
    tree = tmp_path / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir" / "eicar.com").write_bytes(EICAR)
    (tree / "dir" / "motd").write_text("welcome\n")
    os.link(tree / "dir" / "motd", tree / "dir" / "motd.again")  # a hard link inside
    (tree / "passwd").symlink_to("/etc/passwd")
    names = "dir\ndir/eicar.com\ndir/motd\ndir/motd.again\npasswd\n"
    made = subprocess.run([tool("cpio"), "-o", "--quiet", "-H", fmt], input=names.encode(),
                          cwd=tree, capture_output=True, check=True).stdout
    result = scanner.scan_bytes(made, "tree.cpio")
    assert located(result, EICAR_ID) == {"tree.cpio!dir/eicar.com"}
    assert [(f.id, f.location) for f in result.findings if f.id == "archive.symlink"] == [
        ("archive.symlink", "tree.cpio!passwd")]
    assert "'/etc/passwd'" in next(f.description for f in result.findings
                                   if f.id == "archive.symlink")
    assert not {"archive.corrupt", "archive.unsupported", "archive.hardlink"} & ids(result)


def test_unsafe_cpio_names_devices_and_links_are_findings_never_followed(
    scanner: Scanner,
) -> None:
    data = cpio_bytes([
        ("../../etc/cron.d/job", b"* * * * * root sh\n", stat.S_IFREG | 0o644),
        ("/etc/shadow", b"root::0:0\n", stat.S_IFREG | 0o600),
        ("dev/sda", b"", stat.S_IFCHR | 0o600),
        ("fifo", b"", stat.S_IFIFO | 0o600),
        ("link", b"../../../../root/.ssh/authorized_keys", stat.S_IFLNK | 0o777),
    ])
    result = scanner.scan_bytes(data, "x.cpio")
    assert located(result, "archive.path_traversal") == {"x.cpio!../../etc/cron.d/job"}
    assert located(result, "archive.absolute_path") == {"x.cpio!/etc/shadow"}
    assert located(result, "archive.device") == {"x.cpio!dev/sda", "x.cpio!fifo"}
    assert located(result, "archive.symlink") == {"x.cpio!link"}
    assert result.verdict is Verdict.SUSPICIOUS


def test_unsafe_ar_names_are_findings(scanner: Scanner) -> None:
    result = scanner.scan_bytes(ar_bytes([("../../x.sh", b"echo\n")]), "x.a")
    assert located(result, "archive.path_traversal") == {"x.a!../../x.sh"}


@pytest.mark.parametrize("kind", ["ar", "cpio"])
def test_a_cut_off_archive_is_corrupt_and_what_is_there_is_scanned(
    scanner: Scanner, kind: str
) -> None:
    # the member declares the test string and 200 spaces, more than the test file's
    # 128 bytes; cut after 20 of them, what is there is the test file again
    members = [("readme.txt", b"hello\n"), ("eicar.com", EICAR + b" " * 200)]
    whole = (ar_bytes(members) if kind == "ar"
             else cpio_bytes([(n, d, stat.S_IFREG | 0o644) for n, d in members]))
    cut = whole[: whole.index(EICAR) + len(EICAR) + 20]
    result = scanner.scan_bytes(cut, f"x.{kind}")
    corrupt = [f for f in result.findings if f.id == "archive.corrupt"]
    assert [f.location for f in corrupt] == [f"x.{kind}!eicar.com"]
    assert f"cut off: {len(EICAR) + 20} of {len(EICAR) + 200} bytes" in corrupt[0].description
    assert located(result, EICAR_ID) == {f"x.{kind}!eicar.com"}
    whole_result = scanner.scan_bytes(whole, f"x.{kind}")
    assert EICAR_ID not in ids(whole_result)
    assert "archive.corrupt" not in ids(whole_result)


@pytest.mark.parametrize("garbage", [b"070701" + b"zz" * 52, b"not a header at all" * 8])
def test_a_bad_cpio_header_mid_archive_stops_with_a_finding(
    scanner: Scanner, garbage: bytes
) -> None:
    first = cpio_bytes([("eicar.com", EICAR, stat.S_IFREG | 0o644)])
    data = first[: first.index(b"TRAILER") - 110] + garbage
    result = scanner.scan_bytes(data, "x.cpio")
    assert located(result, EICAR_ID) == {"x.cpio!eicar.com"}
    assert located(result, "archive.corrupt") == {"x.cpio"}


def test_a_bad_ar_header_stops_with_a_finding(scanner: Scanner) -> None:
    data = ar_bytes([("eicar.com", EICAR)]) + b"garbage that is no header" * 3
    result = scanner.scan_bytes(data, "x.a")
    assert located(result, EICAR_ID) == {"x.a!eicar.com"}
    assert located(result, "archive.corrupt") == {"x.a"}


@pytest.mark.parametrize("kind", ["ar", "cpio"])
def test_entry_and_byte_limits_hold_for_stored_archives(kind: str) -> None:
    many = [(f"f{i}.txt", b"x" * 1000) for i in range(50)]
    data = (ar_bytes(many) if kind == "ar"
            else cpio_bytes([(n, d, stat.S_IFREG | 0o644) for n, d in many]))
    by_entries = Scanner(ScanConfig(max_entries=10)).scan_bytes(data, f"x.{kind}")
    assert "archive.limit.entries" in ids(by_entries)
    assert by_entries.verdict is Verdict.SUSPICIOUS
    by_bytes = Scanner(ScanConfig(max_total_bytes=20_000)).scan_bytes(data, f"x.{kind}")
    assert "archive.limit.total_bytes" in ids(by_bytes)


def test_a_declared_size_past_the_budget_is_not_read() -> None:
    # a member claiming 9 GB in a 200-byte file: the budget refuses it before slicing
    huge = (b"!<arch>\n" + b"big/".ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2
            + b"644".ljust(8) + b"9000000000" + b"`\n" + b"x" * 100)
    result = Scanner(ScanConfig(max_total_bytes=1_000_000)).scan_bytes(huge, "x.a")
    assert located(result, "archive.limit.total_bytes") == {"x.a!big"}


def test_archives_nest_inside_stored_archives(scanner: Scanner) -> None:
    inner = tar_bytes([("payload/eicar.com", EICAR)], mode="w:gz")
    outer = cpio_bytes([("boot/initrd.tar.gz", inner, stat.S_IFREG | 0o644)])
    deb_like = ar_bytes([("debian-binary", b"2.0\n"), ("initrd.cpio", outer)])
    result = scanner.scan_bytes(deb_like, "x.deb")
    assert located(result, EICAR_ID) == {
        "x.deb!initrd.cpio!boot/initrd.tar.gz!payload/eicar.com"}


def test_an_initramfs_is_read_past_each_trailer(scanner: Scanner) -> None:
    # early microcode as a plain cpio archive padded to 512 bytes, then the main archive
    # compressed, as the kernel's initramfs images are made
    early = cpio_bytes([("kernel/x86/microcode/GenuineIntel.bin", b"\x01" * 300,
                         stat.S_IFREG | 0o644)])
    early += bytes(-len(early) % 512)
    main = gzip.compress(cpio_bytes([("bin/eicar.com", EICAR, stat.S_IFREG | 0o755)]))
    result = scanner.scan_bytes(early + main, "initrd.img")
    tail = f"data after the cpio trailer at offset {len(early)}"
    assert located(result, EICAR_ID) == {f"initrd.img!{tail}!{tail}.out!bin/eicar.com"}
    assert not {"archive.corrupt", "archive.unsupported"} & ids(result)


def test_concatenated_cpio_archives_are_all_read(scanner: Scanner) -> None:
    first = cpio_bytes([("a.txt", b"hello\n", stat.S_IFREG | 0o644)])
    second = cpio_bytes([("b/eicar.com", EICAR, stat.S_IFREG | 0o644)], "odc")
    result = scanner.scan_bytes(first + bytes(1024) + second + bytes(300), "x.cpio")
    assert located(result, EICAR_ID) == {"x.cpio!b/eicar.com"}
    assert not {"archive.corrupt"} & ids(result)
    # zero padding alone after the trailer is no member
    assert scanner.scan_bytes(first + bytes(4096), "y.cpio").findings == []
