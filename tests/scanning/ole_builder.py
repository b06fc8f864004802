"""Build real OLE (CFB v3) files with a VBA project, in code, for macro tests.

No Office sample is committed: the tests write the compound file, the MS-OVBA ``dir``
stream and the compressed module source themselves, so olevba parses exactly what a
macro-enabled document would contain. Every stream is kept at 4096 bytes or more so the
file needs no mini stream (the format's small-stream allocator), which keeps the writer
short.
"""

from __future__ import annotations

import struct

SECTOR = 512
END, FREE, FATSECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
MIN_STREAM = 4096


def ovba_compress(data: bytes) -> bytes:
    """MS-OVBA 2.4.1 container using literal tokens only (valid, just not smaller)."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), 3640):
        chunk = data[start : start + 3640]
        body = bytearray()
        for i in range(0, len(chunk), 8):
            body += b"\x00" + chunk[i : i + 8]
        out += struct.pack("<H", (len(body) + 2 - 3) | 0xB000) + body
    return bytes(out)


def _rec(rec_id: int, payload: bytes) -> bytes:
    return struct.pack("<HI", rec_id, len(payload)) + payload


def vba_dir_stream(module: str, text_offset: int) -> bytes:
    name = module.encode()
    doc = b"d" * 2000  # docstrings pad the dir stream past the mini-stream cutoff
    parts = [
        _rec(0x0001, struct.pack("<I", 1)),  # PROJECTSYSKIND: 32-bit Windows
        _rec(0x0002, struct.pack("<I", 0x409)),
        _rec(0x0014, struct.pack("<I", 0x409)),
        _rec(0x0003, struct.pack("<H", 1252)),
        _rec(0x0004, b"VBAProject"),
        _rec(0x0005, doc), _rec(0x0040, doc.decode().encode("utf-16le")),
        _rec(0x0006, b""), _rec(0x003D, b""),
        _rec(0x0007, struct.pack("<I", 0)),
        _rec(0x0008, struct.pack("<I", 0)),
        struct.pack("<HIIH", 0x0009, 4, 1, 0),  # PROJECTVERSION
        _rec(0x000C, b""), _rec(0x003C, b""),
        struct.pack("<HIH", 0x000F, 2, 1),  # PROJECTMODULES: one module
        _rec(0x0013, struct.pack("<H", 0xFFFF)),
        _rec(0x0019, name), _rec(0x0047, module.encode("utf-16le")),
        _rec(0x001A, name), _rec(0x0032, module.encode("utf-16le")),
        _rec(0x001C, b""), _rec(0x0048, b""),
        _rec(0x0031, struct.pack("<I", text_offset)),
        _rec(0x001E, struct.pack("<I", 0)),
        _rec(0x002C, struct.pack("<H", 0xFFFF)),
        _rec(0x0021, b""),
        _rec(0x002B, b""),
        struct.pack("<HI", 0x0010, 0),  # dir terminator
    ]
    return ovba_compress(b"".join(parts))


def _pad(data: bytes, size: int = MIN_STREAM) -> bytes:
    return data + b"\0" * max(0, size - len(data))


def _dir_entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
    raw = name.encode("utf-16le") + b"\0\0"
    return (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1)
            + struct.pack("<III", NOSTREAM, right, child) + b"\0" * 16 + b"\0" * 4
            + b"\0" * 16 + struct.pack("<IQ", start, size))


def build_cfb(streams: dict[str, bytes]) -> bytes:
    """A compound file with storages/streams given as ``{"VBA/dir": data, ...}``."""
    tree: dict[str, list[str]] = {"": []}
    for path in streams:
        parts = path.split("/")
        for depth in range(len(parts)):
            parent, node = "/".join(parts[:depth]), "/".join(parts[: depth + 1])
            if node not in tree.setdefault(parent, []):
                tree[parent].append(node)
            if depth < len(parts) - 1:
                tree.setdefault(node, [])
    order = [""] + sorted(p for p in tree if p) + sorted(streams)
    order = list(dict.fromkeys(order))
    index = {p: i for i, p in enumerate(order)}
    body = bytearray()
    fat: list[int] = []
    starts: dict[str, int] = {}
    for path in sorted(streams):
        data = streams[path]
        assert len(data) >= MIN_STREAM, path
        first = len(fat)
        count = -(-len(data) // SECTOR)
        fat.extend(list(range(first + 1, first + count)) + [END])
        starts[path] = first
        body += data.ljust(count * SECTOR, b"\0")
    entries = bytearray()
    for path in order:
        children = sorted(tree.get(path, []), key=lambda p: (len(p.rsplit("/", 1)[-1]),
                                                              p.upper()))
        child = index[children[0]] if children else NOSTREAM
        siblings = sorted(tree["/".join(path.split("/")[:-1])] if path else [],
                          key=lambda p: (len(p.rsplit("/", 1)[-1]), p.upper()))
        pos = siblings.index(path) if path else -1
        right = index[siblings[pos + 1]] if path and pos + 1 < len(siblings) else NOSTREAM
        name = path.rsplit("/", 1)[-1] if path else "Root Entry"
        if path in streams:
            entries += _dir_entry(name, 2, NOSTREAM, right, starts[path], len(streams[path]))
        else:
            entries += _dir_entry(name, 5 if not path else 1, child, right,
                                  END if not path else 0, 0)
    entries = entries.ljust(-(-len(entries) // SECTOR) * SECTOR, b"\0")
    dir_start = len(fat)
    dir_count = len(entries) // SECTOR
    fat.extend(list(range(dir_start + 1, dir_start + dir_count)) + [END])
    fat_start = len(fat)
    fat.append(FATSECT)
    assert len(fat) <= SECTOR // 4
    fat_sector = struct.pack(f"<{len(fat)}I", *fat).ljust(SECTOR, b"\xff")
    difat = struct.pack("<I", fat_start) + b"\xff" * (109 * 4 - 4)
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + b"\0" * 6
              + struct.pack("<IIIIIIII", 0, 1, dir_start, 0, MIN_STREAM, END, 0, END)
              + struct.pack("<I", 0) + difat)
    return header.ljust(SECTOR, b"\0") + bytes(body) + bytes(entries) + fat_sector


def vba_project_ole(source: str, module: str = "Module1") -> bytes:
    """An OLE file (like ``vbaProject.bin`` or a ``.doc``) whose macro is ``source``."""
    code = _pad(b"", MIN_STREAM) + ovba_compress(source.encode("cp1252"))
    project = (f'ID="{{00000000-0000-0000-0000-000000000000}}"\r\nModule={module}\r\n'
               f'Name="VBAProject"\r\n').encode()
    project = project + b"\r\n" * ((MIN_STREAM - len(project)) // 2 + 1)
    return build_cfb({
        "PROJECT": project,
        "VBA/_VBA_PROJECT": _pad(b"\xcc\x61\xff\xff\x00"),
        "VBA/dir": _pad(vba_dir_stream(module, MIN_STREAM), 0),
        f"VBA/{module}": code,
    })
