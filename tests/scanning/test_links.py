"""Links inside archives: reported, never followed; harmless only when provably inside.

Packages are full of links such as ``libfoo.so -> libfoo.so.1``: those are low-severity
findings, so a package is not suspicious for being a package. Links that leave the
archive, chains that could, and members written through a link stay findings that
make the file suspicious (or worse).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from secops.scanning import Scanner, Severity, Verdict
from secops.scanning.links import HARDLINK, SYMLINK, ArchiveLinks, stays_inside
from tests.scanning.corpus import (
    EICAR,
    cpio_bytes,
    tar_bytes,
    tar_special,
    zip_with_mode,
)

LINK = stat.S_IFLNK | 0o777


def severities(result, finding_id: str) -> dict[str | None, Severity]:
    return {f.location: f.severity for f in result.findings if f.id == finding_id}


@pytest.mark.parametrize(("name", "target", "kind", "inside"), [
    ("usr/lib/libfoo.so", "libfoo.so.1", SYMLINK, True),
    ("./usr/lib/x86_64-linux-gnu/libz.so", "../../../lib/libz.so.1", SYMLINK, True),
    ("usr/bin/tool", "../share/tool/run", SYMLINK, True),
    ("usr/share/doc/pkg", ".", SYMLINK, True),
    ("usr/lib/x", "../../../etc/passwd", SYMLINK, False),  # climbs past the root
    ("top", "../x", SYMLINK, False),
    ("usr/lib/x", "/etc/passwd", SYMLINK, False),
    ("x", "C:\\Windows\\system32", SYMLINK, False),
    ("a/b/x", "..\\..\\..\\boot.ini", SYMLINK, False),  # backslashes are separators
    ("a/b/x", "sub/../../../..", SYMLINK, False),  # climbs after descending
    ("a/b/x", "sub/../y", SYMLINK, False),  # judged by nobody: "sub" may be a link
    ("a/../b/x", "../y", SYMLINK, False),  # a name with ".." has no depth to trust
    ("x", "", SYMLINK, False),
    ("usr/bin/b", "usr/bin/a", HARDLINK, True),  # hard links name a member from the root
    ("usr/bin/b", "../etc/shadow", HARDLINK, False),
    ("usr/bin/b", "/etc/shadow", HARDLINK, False),
])
def test_what_counts_as_inside(name: str, target: str, kind: str, inside: bool) -> None:
    assert stays_inside(name, target, kind) is inside


def test_package_links_inside_the_archive_are_low_and_the_file_stays_clean(
    scanner: Scanner,
) -> None:
    archive = tar_bytes([
        ("usr/lib/libfoo.so.1", b"\x7fELF" + bytes(60)),
        tar_special("usr/lib/libfoo.so", tarfile.SYMTYPE, "libfoo.so.1"),
        tar_special("usr/bin/foo", tarfile.SYMTYPE, "../lib/libfoo.so.1"),
        tar_special("usr/lib/libfoo.so.1.0", tarfile.LNKTYPE, "usr/lib/libfoo.so.1"),
    ])
    result = scanner.scan_bytes(archive, "pkg.tar")
    assert severities(result, "archive.symlink") == {
        "pkg.tar!usr/lib/libfoo.so": Severity.LOW, "pkg.tar!usr/bin/foo": Severity.LOW}
    assert severities(result, "archive.hardlink") == {
        "pkg.tar!usr/lib/libfoo.so.1.0": Severity.LOW}
    assert all("inside the archive" in f.description for f in result.findings
               if f.id in ("archive.symlink", "archive.hardlink"))
    assert result.verdict is Verdict.CLEAN


def test_links_that_leave_the_archive_stay_suspicious(scanner: Scanner) -> None:
    archive = tar_bytes([
        ("usr/lib/libfoo.so.1", b"library"),
        tar_special("usr/lib/libfoo.so", tarfile.SYMTYPE, "libfoo.so.1"),
        tar_special("usr/lib/escape", tarfile.SYMTYPE, "../../../etc/shadow"),
        tar_special("usr/lib/absolute", tarfile.SYMTYPE, "/etc/shadow"),
        tar_special("usr/lib/hard", tarfile.LNKTYPE, "../../etc/passwd"),
    ])
    result = scanner.scan_bytes(archive, "x.tar")
    assert severities(result, "archive.symlink") == {
        "x.tar!usr/lib/libfoo.so": Severity.LOW,
        "x.tar!usr/lib/escape": Severity.MEDIUM,
        "x.tar!usr/lib/absolute": Severity.MEDIUM}
    assert severities(result, "archive.hardlink") == {"x.tar!usr/lib/hard": Severity.MEDIUM}
    assert result.verdict is Verdict.SUSPICIOUS


def test_a_member_written_through_a_link_is_high_and_no_link_is_trusted(
    scanner: Scanner,
) -> None:
    # The tarfile-extraction attack: a link to a directory outside, then a file under it.
    archive = tar_bytes([
        tar_special("conf", tarfile.SYMTYPE, "/etc"),
        ("conf/cron.d/job", b"* * * * * root sh -c 'id'\n"),
        tar_special("lib.so", tarfile.SYMTYPE, "lib.so.1"),
        ("lib.so.1", b"library"),
    ])
    result = scanner.scan_bytes(archive, "x.tar")
    assert severities(result, "archive.through_symlink") == {
        "x.tar!conf/cron.d/job": Severity.HIGH}
    assert "'conf'" in next(f.description for f in result.findings
                            if f.id == "archive.through_symlink")
    # even the innocent-looking link is not judged once the tree can be redirected
    assert severities(result, "archive.symlink") == {
        "x.tar!conf": Severity.MEDIUM, "x.tar!lib.so": Severity.MEDIUM}
    assert result.verdict is Verdict.SUSPICIOUS


def test_links_that_each_stay_inside_but_chain_outside_are_not_trusted(
    scanner: Scanner,
) -> None:
    # "p/q/a" -> "../.." is the root (inside); "b" -> "p/q/a/../x" reads as "p/q/x", but
    # resolves through "a" to the root's parent. The climb after a name is not judged.
    archive = tar_bytes([
        tar_special("p/q/a", tarfile.SYMTYPE, "../.."),
        tar_special("b", tarfile.SYMTYPE, "p/q/a/../x"),
    ])
    result = scanner.scan_bytes(archive, "chain.tar")
    assert severities(result, "archive.symlink") == {
        "chain.tar!p/q/a": Severity.LOW, "chain.tar!b": Severity.MEDIUM}
    assert result.verdict is Verdict.SUSPICIOUS


def test_a_member_with_the_name_of_a_link_is_written_through_it(scanner: Scanner) -> None:
    archive = tar_bytes([
        tar_special("motd", tarfile.SYMTYPE, "/etc/motd"),
        ("motd", b"owned\n"),  # an extractor that opens "motd" writes /etc/motd
    ])
    result = scanner.scan_bytes(archive, "x.tar")
    assert severities(result, "archive.through_symlink") == {"x.tar!motd": Severity.HIGH}


def test_an_archive_not_read_to_its_end_has_no_trusted_links(scanner: Scanner) -> None:
    archive = tar_bytes([
        tar_special("lib.so", tarfile.SYMTYPE, "lib.so.1"),
        ("lib.so.1", b"x" * 4096),
        ("more", b"y" * 4096),
    ])
    cut = archive[: 512 * 3 + 100]  # inside the second file's data
    result = scanner.scan_bytes(cut, "cut.tar")
    assert severities(result, "archive.symlink") == {"cut.tar!lib.so": Severity.MEDIUM}


def test_cpio_links_are_judged_the_same_way(scanner: Scanner, tmp_path: Path) -> None:
    data = cpio_bytes([
        ("lib/libz.so.1", b"library", stat.S_IFREG | 0o644),
        ("lib/libz.so", b"libz.so.1", LINK),
        ("bin/sh", b"/bin/busybox", LINK),
    ])
    result = scanner.scan_bytes(data, "root.cpio")
    assert severities(result, "archive.symlink") == {
        "root.cpio!lib/libz.so": Severity.LOW, "root.cpio!bin/sh": Severity.MEDIUM}
    # and an archive written by GNU cpio itself
    cpio = shutil.which("cpio")
    assert cpio is not None, "cpio is not installed (scripts/bootstrap.sh installs it)"
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "libz.so.1").write_bytes(b"library")
    os.symlink("libz.so.1", tree / "lib" / "libz.so")
    made = subprocess.run([cpio, "-o", "--quiet", "-H", "newc"],
                          input=b"lib\nlib/libz.so.1\nlib/libz.so\n", cwd=tree,
                          capture_output=True, check=True).stdout
    result = scanner.scan_bytes(made, "made.cpio")
    assert severities(result, "archive.symlink") == {"made.cpio!lib/libz.so": Severity.LOW}
    assert result.verdict is Verdict.CLEAN


def test_zip_links_keep_their_target_unread_and_stay_medium(scanner: Scanner) -> None:
    result = scanner.scan_bytes(zip_with_mode("lib.so", b"lib.so.1", LINK), "z.zip")
    assert severities(result, "archive.symlink") == {"z.zip!lib.so": Severity.MEDIUM}


def test_a_debian_package_with_relative_links_is_clean(scanner: Scanner, tmp_path: Path) -> None:
    dpkg_deb = shutil.which("dpkg-deb")
    assert dpkg_deb is not None
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: A <a@example.org>\n"
        "Description: demo\n")
    lib = root / "usr" / "lib" / "demo"
    lib.mkdir(parents=True)
    (lib / "libdemo.so.1").write_bytes(b"\x7fELF" + bytes(60))
    os.symlink("libdemo.so.1", lib / "libdemo.so")
    (root / "usr" / "bin").mkdir()
    os.symlink("../lib/demo/libdemo.so.1", root / "usr" / "bin" / "demo")
    subprocess.run([dpkg_deb, "--root-owner-group", "--build", str(root),
                    str(tmp_path / "demo.deb")], check=True, capture_output=True)
    clean = scanner.scan_bytes((tmp_path / "demo.deb").read_bytes(), "demo.deb")
    assert severities(clean, "archive.symlink") == {
        "demo.deb!data.tar.xz!./usr/lib/demo/libdemo.so": Severity.LOW,
        "demo.deb!data.tar.xz!./usr/bin/demo": Severity.LOW}
    assert clean.verdict is Verdict.CLEAN
    # the same package with EICAR in it is still malicious: links change nothing else
    (lib / "eicar.com").write_bytes(EICAR)
    subprocess.run([dpkg_deb, "--root-owner-group", "--build", str(root),
                    str(tmp_path / "bad.deb")], check=True, capture_output=True)
    assert scanner.scan_bytes((tmp_path / "bad.deb").read_bytes(), "bad.deb").verdict \
        is Verdict.MALICIOUS


def test_the_collector_alone() -> None:
    links = ArchiveLinks()
    links.member("a", "t!a")
    links.link("a", "b", SYMLINK, "t!a")
    links.member("b", "t!b")
    assert [f.severity for f in links.findings()] == [Severity.MEDIUM]  # not read to the end
    links.complete = True
    assert [f.severity for f in links.findings()] == [Severity.LOW]
    assert ArchiveLinks(complete=True).findings() == []
