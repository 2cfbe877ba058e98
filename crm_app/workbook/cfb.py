"""A compound file (MS-CFB version 3) written from a tree of streams: the container of vbaProject.bin.

olefile reads compound files but cannot create one; the PyPI writers were not usable here
(`cfbwrite` is AGPL-licensed, `ms-cfb` writes its parts as files in the working directory).
Written to MS-CFB: 512-byte sectors, streams under 4096 bytes in the mini stream, every
timestamp zero and every directory tree a balanced red-black tree in the spec's name order,
so the same streams always give the same bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
_HEADER_DIFAT = 109  # FAT sector numbers the header holds: enough for files up to ~7 MB
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1


@dataclass
class Storage:
    """A folder of the compound file: streams (name -> bytes) and storages."""

    name: str
    streams: dict[str, bytes] = field(default_factory=dict)
    storages: list[Storage] = field(default_factory=list)


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: list[_Entry] = field(default_factory=list)
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    colour: int = _BLACK
    start: int = ENDOFCHAIN


def compound_file(root: Storage) -> bytes:
    """The compound file holding `root`'s streams and storages (the root's own name is ignored)."""
    entries = _flatten(root)
    mini_data, mini_fat = _mini_stream(entries)
    big = [e for e in entries if e.kind == _STREAM and len(e.data) >= MINI_CUTOFF]
    layout = _Layout()
    for entry in big:
        entry.start = layout.add_chain(_sectors(len(entry.data)))
    root_entry = entries[0]
    root_entry.data = mini_data
    root_entry.start = layout.add_chain(_sectors(len(mini_data))) if mini_data else ENDOFCHAIN
    mini_fat_bytes = _uint32s(mini_fat)
    mini_fat_start = layout.add_chain(_sectors(len(mini_fat_bytes))) if mini_fat else ENDOFCHAIN
    directory = _directory(entries)
    directory_start = layout.add_chain(len(directory) // SECTOR)
    fat_sectors = layout.add_fat()
    body = b"".join(_padded(e.data) for e in [*big, root_entry] if e.data)
    body += _padded(mini_fat_bytes) + directory + _uint32s(layout.fat)
    header = _header(layout, fat_sectors, directory_start, mini_fat_start, len(mini_fat_bytes) // SECTOR)
    return header + body


def _flatten(root: Storage) -> list[_Entry]:
    """Every entry in directory order (the root first), with its children's tree linked."""
    entries: list[_Entry] = []

    def add(storage: Storage, kind: int) -> _Entry:
        entry = _Entry(storage.name if kind != _ROOT else "Root Entry", kind)
        entries.append(entry)
        entry.children = [add(s, _STORAGE) for s in storage.storages]
        for name, data in storage.streams.items():
            stream = _Entry(name, _STREAM, bytes(data))
            entries.append(stream)
            entry.children.append(stream)
        return entry

    add(root, _ROOT)
    index = {id(e): i for i, e in enumerate(entries)}
    for entry in entries:
        if entry.children:
            entry.child = _red_black(sorted(entry.children, key=_name_order), index)
    return entries


def _name_order(entry: _Entry) -> tuple[int, str]:
    """MS-CFB 2.6.4: shorter names first, then by the upper-cased names."""
    return len(entry.name), entry.name.upper()


def _red_black(ordered: list[_Entry], index: dict[int, int], depth: int = 0) -> int:
    """Link `ordered` as a balanced binary tree; nodes on an incomplete last level are red, so
    every path has as many black nodes (a valid red-black tree). Returns the root's id."""
    levels = len(ordered).bit_length()  # depth of the last level + 1
    full = len(ordered) == (1 << levels) - 1

    def build(lo: int, hi: int, d: int) -> int:
        if lo >= hi:
            return NOSTREAM
        mid = (lo + hi) // 2
        node = ordered[mid]
        node.colour = _RED if (d == levels - 1 and not full) else _BLACK
        node.left, node.right = build(lo, mid, d + 1), build(mid + 1, hi, d + 1)
        return index[id(node)]

    return build(0, len(ordered), depth)


def _mini_stream(entries: list[_Entry]) -> tuple[bytes, list[int]]:
    """The small streams packed in 64-byte mini sectors, and the mini FAT chaining them."""
    data, fat = bytearray(), []
    for entry in entries:
        if entry.kind != _STREAM or len(entry.data) >= MINI_CUTOFF or not entry.data:
            continue
        count = -(-len(entry.data) // MINI_SECTOR)
        entry.start = len(fat)
        fat += [*range(entry.start + 1, entry.start + count), ENDOFCHAIN]
        data += entry.data.ljust(count * MINI_SECTOR, b"\0")
    fat += [FREESECT] * (-len(fat) % (SECTOR // 4))
    return bytes(data), fat if data else []


class _Layout:
    """Sector allocation: each part a contiguous chain after the previous one, FAT last."""

    def __init__(self) -> None:
        self.fat: list[int] = []

    def add_chain(self, count: int) -> int:
        start = len(self.fat)
        self.fat += [*range(start + 1, start + count), ENDOFCHAIN]
        return start

    def add_fat(self) -> int:
        """Append the FAT's own sectors (they count themselves) and pad it to whole sectors."""
        per_sector = SECTOR // 4
        count = 1
        while -(-(len(self.fat) + count) // per_sector) > count:
            count += 1
        if count > _HEADER_DIFAT:
            raise ValueError("compound file too large for a header-only DIFAT")
        self.fat_start = len(self.fat)
        self.fat += [FATSECT] * count
        self.fat += [FREESECT] * (-len(self.fat) % per_sector)
        return count


def _directory(entries: list[_Entry]) -> bytes:
    rows = [_directory_entry(e) for e in entries]
    rows += [_unused_entry()] * (-len(rows) % (SECTOR // 128))
    return b"".join(rows)


def _directory_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le")
    if len(name) > 62:
        raise ValueError(f"compound file entry name too long: {entry.name!r}")
    size = len(entry.data) if entry.kind != _STORAGE else 0
    start = entry.start if (entry.kind != _STORAGE and entry.data) else (ENDOFCHAIN if entry.kind == _ROOT else 0)
    return struct.pack("<64sHBBIII16sI8s8sIQ", name, len(name) + 2, entry.kind, entry.colour, entry.left,
                       entry.right, entry.child, b"\0" * 16, 0, b"\0" * 8, b"\0" * 8, start, size)


def _unused_entry() -> bytes:
    return struct.pack("<64sHBBIII16sI8s8sIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, b"\0" * 16, 0,
                       b"\0" * 8, b"\0" * 8, 0, 0)


def _header(layout: _Layout, fat_sectors: int, directory_start: int, mini_fat_start: int,
            mini_fat_sectors: int) -> bytes:
    difat = [layout.fat_start + i for i in range(fat_sectors)]
    difat += [FREESECT] * (_HEADER_DIFAT - len(difat))
    return struct.pack(f"<8s16sHHHHH6sIIIIIIIII{_HEADER_DIFAT}I", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
                       b"\0" * 16, 0x003E, 0x0003, 0xFFFE, 9, 6, b"\0" * 6, 0, fat_sectors, directory_start, 0,
                       MINI_CUTOFF, mini_fat_start, mini_fat_sectors, ENDOFCHAIN, 0, *difat)


def _sectors(size: int) -> int:
    return -(-size // SECTOR)


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % SECTOR)


def _uint32s(values: list[int]) -> bytes:
    return struct.pack(f"<{len(values)}I", *values)
