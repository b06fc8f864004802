"""Test corpus built in code: no live malware and no binary sample is committed.

EICAR is assembled from two halves so this file itself is not the test file; bombs,
zip-slip names and encrypted or malformed archives are produced by patching headers of
archives that the standard library writes.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
import struct
import tarfile
import zipfile
import zlib

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR" + b"-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
assert len(EICAR) == 68


def zip_bytes(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), data,
                             compress_type=method)
    return buffer.getvalue()


def zip_with_mode(name: str, data: bytes, mode: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = mode << 16
        archive.writestr(info, data)
    return buffer.getvalue()


def patch_all(data: bytes, sig: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field in every local (PK34) or central (PK12) header."""
    out = bytearray(data)
    pos = out.find(sig)
    while pos >= 0:
        struct.pack_into(fmt, out, pos + offset, value)
        pos = out.find(sig, pos + 4)
    return bytes(out)


def encrypted_zip(name: str = "secret.txt") -> bytes:
    """Set the 'encrypted' flag bit in both headers (content stays what it was)."""
    data = zip_bytes([(name, b"top secret " * 10)])
    data = patch_all(data, b"PK\x03\x04", 6, "<H", 0x1)
    return patch_all(data, b"PK\x01\x02", 8, "<H", 0x1)


def lying_size_zip(actual: bytes, declared: int) -> bytes:
    """A zip whose headers declare fewer uncompressed bytes than the data produces."""
    data = zip_bytes([("lie.bin", actual)])
    data = patch_all(data, b"PK\x03\x04", 22, "<I", declared)
    return patch_all(data, b"PK\x01\x02", 24, "<I", declared)


def overlapping_zip() -> bytes:
    """Two central directory entries that share one local header (overlap bomb)."""
    single = zip_bytes([("a.txt", b"A" * 1000)])
    cd = single.find(b"PK\x01\x02")
    eocd = single.find(b"PK\x05\x06")
    entry = single[cd:eocd]
    second = bytearray(entry)
    second[46:51] = b"b.txt"
    new_cd = entry + bytes(second)
    tail = bytearray(single[eocd:])
    struct.pack_into("<HHI", tail, 8, 2, 2, len(new_cd))
    return single[:cd] + new_cd + bytes(tail)


def duplicate_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("same.txt", b"first")
        archive.writestr("same.txt", b"second")  # zipfile warns, then writes it
    return buffer.getvalue()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def tar_special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def nested_zip(depth: int, payload: bytes, leaf: str = "eicar.com") -> bytes:
    data = zip_bytes([(leaf, payload)])
    for level in range(depth - 1):
        data = zip_bytes([(f"level{level}.zip", data)])
    return data


def minimal_pe() -> bytes:
    pe = bytearray(0x200)
    pe[0:2] = b"MZ"
    struct.pack_into("<I", pe, 0x3C, 0x80)
    pe[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", pe, 0x84, 0x8664, 1, 0, 0, 0, 0xF0, 0x22)
    struct.pack_into("<H", pe, 0x98, 0x20B)
    return bytes(pe)


def minimal_elf() -> bytes:
    elf = bytearray(64)
    elf[0:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<HHI", elf, 16, 2, 0x3E, 1)
    return bytes(elf) + b"\0" * 64


def pdf(body: bytes = b"", *, extra_trailer: bytes = b"") -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + body + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + extra_trailer
    out += b">>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def png(width: int = 4, height: int = 4, seed: int = 0) -> bytes:
    rng = random.Random(seed)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    raw = b"".join(b"\0" + bytes(rng.randrange(256) for _ in range(width * 3))
                   for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gif() -> bytes:
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00"
            b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def bmp(width: int = 2, height: int = 2) -> bytes:
    row = (b"\x00\x00\xff" * width).ljust((width * 3 + 3) // 4 * 4, b"\0")
    pixels = row * height
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835,
                       0, 0)
    return header + info + pixels


def wav(samples: int = 800) -> bytes:
    data = bytes(random.Random(samples).randrange(256) for _ in range(samples))
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 8000, 8000, 1, 8)
    return (b"RIFF" + struct.pack("<I", 4 + len(fmt) + 8 + len(data)) + b"WAVE" + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def docx(text: str) -> bytes:
    content_types = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
                     b'openxmlformats.org/package/2006/content-types"><Default Extension="xml" '
                     b'ContentType="application/xml"/></Types>')
    document = (f'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p>'
                f'</w:body></w:document>').encode()
    return zip_bytes([("[Content_Types].xml", content_types), ("word/document.xml", document)])


def benign_corpus(count: int = 120) -> dict[str, bytes]:
    """At least ``count`` harmless files of many types, deterministic."""
    rng = random.Random(4)
    words = ("alpha beta gamma delta invoice report quarterly budget meeting notes shell "
             "download execute request server client evaluate python table").split()

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    makers = [
        lambda i: (f"notes{i}.txt", (text(200) + "\n").encode()),
        lambda i: (f"data{i}.csv", "\n".join(f"{j},{text(3)},{j * 3.5}"
                                              for j in range(50)).encode()),
        lambda i: (f"conf{i}.json", f'{{"id": {i}, "name": "{text(3)}", "ok": true}}'.encode()),
        lambda i: (f"page{i}.html", f"<html><head><title>{text(2)}</title><script>var x = "
                                    f"{i}; console.log(x);</script></head><body><p>{text(80)}"
                                    f"</p></body></html>".encode()),
        lambda i: (f"doc{i}.md", f"# {text(3)}\n\n{text(120)}\n".encode()),
        lambda i: (f"feed{i}.xml", f'<?xml version="1.0"?><items><item>{text(10)}</item>'
                                   f"</items>".encode()),
        lambda i: (f"img{i}.png", png(4 + i % 5, 4, seed=i)),
        lambda i: (f"anim{i}.gif", gif()),
        lambda i: (f"pic{i}.bmp", bmp(2 + i % 3, 2)),
        lambda i: (f"sound{i}.wav", wav(500 + i)),
        lambda i: (f"paper{i}.pdf", pdf(b"/PageMode /UseNone ")),
        lambda i: (f"bundle{i}.zip", zip_bytes([(f"a{i}.txt", text(50).encode()),
                                                (f"dir/b{i}.csv", b"1,2,3\n")])),
        lambda i: (f"backup{i}.tar.gz", tar_bytes([(f"f{i}.txt", text(40).encode())], "w:gz")),
        lambda i: (f"log{i}.txt.gz", gzip.compress(text(100).encode(), mtime=0)),
        lambda i: (f"dump{i}.txt.bz2", bz2.compress(text(100).encode())),
        lambda i: (f"rows{i}.csv.xz", lzma.compress(text(100).encode())),
        lambda i: (f"report{i}.docx", docx(text(30))),
        lambda i: (f"script{i}.py", f"def main():\n    print({text(2)!r})\n".encode()),
        lambda i: (f"style{i}.css", f"body {{ margin: {i}px; color: #333; }}\n".encode()),
        lambda i: (f"vector{i}.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/'
                                     b'svg" width="10" height="10"><rect width="5" height="5"/>'
                                     b"</svg>"),
        lambda i: (f"empty{i}.dat", b""),
        lambda i: (f"random{i}.bin", bytes(rng.randrange(256) for _ in range(2048))),
    ]
    corpus: dict[str, bytes] = {}
    i = 0
    while len(corpus) < count:
        name, data = makers[i % len(makers)](i)
        corpus[name] = data
        i += 1
    return corpus


def unexpanded_containers() -> dict[str, tuple[bytes, str | None]]:
    """Containers the engine recognises and does not expand, built from their published
    headers: file name -> (bytes, libmagic's MIME type for them or None where libmagic
    has no rule). The MIME types show the samples are what they claim; each compressed
    sample has a payload that is not compressed text, as a real one would."""
    payload = bytes(range(256)) * 4
    squashfs = b"hsqs" + struct.pack("<IIIIHHHHHH", 3, 0, 131072, 1, 4, 17, 0, 1, 4, 0)
    return {
        "a.rar": (b"Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00\x0d\x00" + payload,
                  "application/x-rar"),
        "b.rar": (b"Rar!\x1a\x07\x01\x00\x33\x92\xb5\xe5\x0a\x01\x05\x06\x00\x05"
                  b"\x01\x01\x80\x80\x00" + payload, "application/x-rar"),
        "c.cab": (b"MSCF\x00\x00\x00\x00" + struct.pack("<IIIIBBHHHHH", 1068, 0, 44, 0,
                                                         3, 1, 1, 1, 0, 0, 0) + payload,
                  "application/vnd.ms-cab-compressed"),
        "d.zst": (b"\x28\xb5\x2f\xfd\x04\x58" + payload, "application/zstd"),
        "e.lz4": (b"\x04\x22\x4d\x18\x64\x40\xa7" + payload, "application/x-lz4"),
        "f.lz": (b"LZIP\x01\x0c" + payload, "application/x-lzip"),
        "g.wim": (b"MSWIM\x00\x00\x00" + struct.pack("<I", 208) + payload,
                  "application/x-ms-wim"),
        "h.xar": (b"xar!\x00\x1c\x00\x01" + payload, "application/x-xar"),
        "i.rpm": (b"\xed\xab\xee\xdb\x03\x00\x00\x00\x00\x01" + b"pkg-1.0".ljust(66, b"\0")
                  + payload, "application/x-rpm"),
        "j.squashfs": (squashfs + payload, None),
        "k.vhd": (b"conectix\x00\x00\x00\x02\x00\x01\x00\x00" + payload,
                  "application/x-virtualbox-vhd"),
        "k2.vhd": (payload + b"conectix\x00\x00\x00\x02\x00\x01\x00\x00" + bytes(496), None),
        "l.vhdx": (b"vhdxfile" + "Microsoft Windows".encode("utf-16-le") + payload, None),
        "m.ace": (b"\x00" * 7 + b"**ACE**" + payload, "application/x-ace-compressed"),
        "n.lzh": (b"\x20\x00-lh5-" + bytes(14) + payload, "application/x-lzh-compressed"),
        "o.arj": (b"\x60\xea\x26\x00\x1e\x06\x01\x00\x10\x00\x02" + payload,
                  "application/x-arj"),
        "p.Z": (b"\x1f\x9d\x90" + payload, "application/x-compress"),
        "q.iso": (b"\x00" * 32768 + b"\x01CD001\x01\x00" + payload,
                  "application/x-iso9660-image"),
        "r.dmg": (payload + b"koly" + b"\x00" * 508, None),
    }


def ar_bytes(members: list[tuple[str, bytes]], names: str = "gnu") -> bytes:
    """An ar archive as GNU ar (long names in a ``//`` member) or BSD ar (``#1/len``
    names ahead of the data) writes it."""
    def header(name: bytes, size: int) -> bytes:
        return (name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6)
                + b"100644".ljust(8) + str(size).encode().ljust(10) + b"`\n")

    def pad(data: bytes) -> bytes:
        return data + b"\n" * (len(data) % 2)

    out, table = [b"!<arch>\n"], b""
    body = []
    for name, data in members:
        raw = name.encode()
        if names == "bsd" and len(raw) > 15:
            body.append(header(b"#1/%d" % len(raw), len(raw) + len(data)) + pad(raw + data))
        elif len(raw) > 15:
            body.append(header(b"/%d" % len(table), len(data)) + pad(data))
            table += raw + b"/\n"
        else:
            body.append(header(raw + (b"/" if names == "gnu" else b""), len(data)) + pad(data))
    if table:
        out.append(header(b"//", len(table)) + pad(table))
    return b"".join(out + body)


def cpio_bytes(members: list[tuple[str, bytes, int]], fmt: str = "newc") -> bytes:
    """A cpio archive (``newc`` or ``odc``) of ``(name, data, mode)`` members, ended by
    its trailer; a symbolic link's data is its target."""
    out = []
    for ino, (name, data, mode) in enumerate([*members, ("TRAILER!!!", b"", 0)], 1):
        raw = name.encode() + b"\0"
        if fmt == "odc":
            out.append(b"070707" + b"".join(b"%06o" % v for v in (0, ino, mode, 0, 0, 1, 0))
                       + b"%011o" % 0 + b"%06o" % len(raw) + b"%011o" % len(data) + raw + data)
        else:
            head = b"070701" + b"".join(b"%08x" % v for v in (
                ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0))
            out.append(head + raw + b"\0" * (-(110 + len(raw)) % 4)
                       + data + b"\0" * (-len(data) % 4))
    return b"".join(out)
