"""The register's VBA project (xl/vbaProject.bin) built from the module sources in vba/, as MS-OVBA
defines a project written without Office.

MS-OVBA, Microsoft's published specification of the format, has a writer set the `_VBA_PROJECT`
stream's Version to 0xFFFF and leave out its performance cache: Office then ignores compiled
code and compiles each module from its compressed source. So every module stream here holds only
its compressed source (MODULEOFFSET 0): no compiled cache at all, never a malformed one. The
references are the xlwings add-in's, as Excel wrote them into xlwings' quickstart.xlsm (with the
Office library that declares IRibbonControl, for the ribbon's callbacks).

The PyPI packages for this were read and not used: `ms-ovba` 0.0.1 writes its streams as files in
the working directory and draws a random seed for the PROJECT stream's CMG/DPB/GC (no two
builds alike); `ms-ovba-compression` 1.0.1 pads a last chunk it stores raw with NULs (corrupting
the source) and searches matches in quadratic time. Compression, the data "encryption" of
CMG/DPB/GC (with a fixed seed) and the streams are written here from the spec; the container is
`cfb.compound_file`. Same sources, same bytes.
"""
from __future__ import annotations

import re
import site
import struct
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from crm_app.workbook.cfb import Storage, compound_file

# The sources: vba/ of a checkout; an installed package has them as data files (setup.cfg) under
# its prefix, or under the user base for `pip install --user`.
CHECKOUT_VBA_DIR = Path(__file__).resolve().parents[2] / "vba"
INSTALLED_VBA_DIRS = (Path(sys.prefix) / "share" / "crm-addin" / "vba",
                      Path(site.getuserbase()) / "share" / "crm-addin" / "vba")
CODE_PAGE = 1252  # the modules' text encoding (Windows Western); the sources must be plain ASCII
LCID_EN_US = 0x0409
PROJECT_NAME = "VBAProject"
WORKBOOK_MODULE = "ThisWorkbook"
# Fixed: a project id that changed at every build would change the file at every build.
PROJECT_ID = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "crm-addin/crm_register.xlsm/VBAProject")).upper() + "}"
_WORKBOOK_BASE = "0{00020819-0000-0000-C000-000000000046}"  # Excel's Workbook class
_WORKSHEET_BASE = "0{00020820-0000-0000-C000-000000000046}"  # Excel's Worksheet class
_NEWLINE = "\r\n"


@dataclass(frozen=True)
class Reference:
    """A library the project references: a registered type library or another VBA project."""

    name: str
    libid: str
    relative_libid: str = ""  # set for a project reference (REFERENCEPROJECT)
    major_version: int = 0
    minor_version: int = 0


# Byte for byte as in the dir stream Excel wrote for xlwings' quickstart.xlsm: the Office library
# and the xlwings add-in. The add-in's absolute path is the one on the machine the quickstart was
# saved on: the reference is kept exactly as xlwings ships it, since that file is what `xlwings
# quickstart` hands every user and the reference is known to resolve there.
OFFICE = Reference("Office", r"*\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#C:\Program Files\Common "
                             r"Files\Microsoft Shared\OFFICE16\MSO.DLL#Microsoft Office 16.0 Object Library")
XLWINGS = Reference("xlwings", r"*\CC:\Users\felix\dev\xlwings\xlwings\addin\xlwings.xlam",
                    r"*\Caddin\xlwings.xlam", 0x68FE4C3D, 0x000C)
REFERENCES = (OFFICE, XLWINGS)


@dataclass(frozen=True)
class Module:
    """A VBA module: its name, whether it is a document module (a sheet's or the workbook's), and
    its source text as the VBA editor exports it (Attribute lines included)."""

    name: str
    source: str
    document: bool = False


# ----------------------------------------------------------------------------- the modules
def vba_sources_dir() -> Path:
    """Where the .bas sources are: the checkout's vba/, else the installed package's copy."""
    folders = (CHECKOUT_VBA_DIR, *INSTALLED_VBA_DIRS)
    for folder in folders:
        if any(folder.glob("*.bas")):
            return folder
    raise FileNotFoundError(f"no VBA sources (*.bas) in {', '.join(map(str, folders))}: reinstall crm-addin "
                            "/ 找不到 VBA 源文件，请重新安装")


def source_modules(folder: Path | None = None) -> list[Module]:
    """The standard modules: every .bas file of `folder` (default: `vba_sources_dir()`), read now
    (a regenerated file flows straight in), in name order."""
    return [standard_module(path) for path in sorted((folder or vba_sources_dir()).glob("*.bas"))]


def standard_module(path: Path) -> Module:
    text = path.read_bytes().decode("ascii", errors="strict").replace("\r\n", "\n")
    match = re.match(r'Attribute VB_Name = "(\w+)"\n', text)
    if not match:
        raise ValueError(f"{path}: a .bas file starts with its Attribute VB_Name line / 缺少 VB_Name")
    return Module(match.group(1), text.replace("\n", _NEWLINE))


def document_module(name: str, workbook: bool = False) -> Module:
    """The module behind a sheet (named by its codeName) or the workbook, as Excel creates it:
    attributes only, no code."""
    base = _WORKBOOK_BASE if workbook else _WORKSHEET_BASE
    lines = [f'Attribute VB_Name = "{name}"', f'Attribute VB_Base = "{base}"',
             "Attribute VB_GlobalNameSpace = False", "Attribute VB_Creatable = False",
             "Attribute VB_PredeclaredId = True", "Attribute VB_Exposed = True",
             "Attribute VB_TemplateDerived = False", "Attribute VB_Customizable = True"]
    return Module(name, _NEWLINE.join(lines) + _NEWLINE, document=True)


def register_modules(sheet_code_names: Sequence[str], folder: Path | None = None) -> list[Module]:
    """ThisWorkbook, a document module per sheet (in sheet order), then the vba/*.bas modules."""
    modules = [document_module(WORKBOOK_MODULE, workbook=True), *map(document_module, sheet_code_names),
               *source_modules(folder)]
    names = [m.name.lower() for m in modules]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f"VBA module names used twice: {', '.join(clash)} / VBA 模块名重复")
    return modules


# ----------------------------------------------------------------------------- the project
def vba_project_bin(modules: Sequence[Module], references: Sequence[Reference] = REFERENCES) -> bytes:
    """xl/vbaProject.bin holding `modules` (source only) and `references`."""
    streams = {m.name: compress(m.source.encode("cp1252")) for m in modules}
    vba = Storage("VBA", {"_VBA_PROJECT": _VBA_PROJECT_STREAM,
                          "dir": compress(dir_stream(modules, references)), **streams})
    return compound_file(Storage("", {"PROJECT": project_stream(modules),
                                      "PROJECTwm": project_wm_stream(modules)}, [vba]))


# Reserved1 0x61CC, Version 0xFFFF ("MUST be 0xFFFF on write"), Reserved2 0x00, Reserved3: no
# performance cache follows.
_VBA_PROJECT_STREAM = struct.pack("<HHBH", 0x61CC, 0xFFFF, 0x00, 0x0000)


def dir_stream(modules: Sequence[Module], references: Sequence[Reference]) -> bytes:
    """The uncompressed dir stream (MS-OVBA 2.3.4.2): project information, references, modules."""
    out = [_information()]
    out += [_reference(r) for r in references]
    out.append(_record(0x000F, struct.pack("<H", len(modules))) + _record(0x0013, struct.pack("<H", 0xFFFF)))
    out += [_module_record(m) for m in modules]
    out.append(struct.pack("<HI", 0x0010, 0))
    return b"".join(out)


def _information() -> bytes:
    version = struct.pack("<HIIH", 0x0009, 4, 0x6901E03F, 0x0002)  # PROJECTVERSION: Reserved is 4, not a size
    return b"".join([
        _record(0x0001, struct.pack("<I", 3)),  # SysKind: 64-bit Windows, as the quickstart's
        _record(0x004A, struct.pack("<I", 5)),  # PROJECTCOMPATVERSION, as the quickstart's
        _record(0x0002, struct.pack("<I", LCID_EN_US)),
        _record(0x0014, struct.pack("<I", LCID_EN_US)),
        _record(0x0003, struct.pack("<H", CODE_PAGE)),
        _record(0x0004, PROJECT_NAME.encode("ascii")),
        _record(0x0005, b"") + _record(0x0040, b""),  # docstring, MBCS and Unicode
        _record(0x0006, b"") + _record(0x003D, b""),  # help file
        _record(0x0007, struct.pack("<I", 0)),
        _record(0x0008, struct.pack("<I", 0)),
        version,
        _record(0x000C, b"") + _record(0x003C, b""),  # conditional-compilation constants
    ])


def _reference(ref: Reference) -> bytes:
    name = _record(0x0016, ref.name.encode("cp1252")) + _record(0x003E, ref.name.encode("utf-16-le"))
    if ref.relative_libid:
        body = (_sized(ref.libid.encode("cp1252")) + _sized(ref.relative_libid.encode("cp1252"))
                + struct.pack("<IH", ref.major_version, ref.minor_version))
        return name + _record(0x000E, body)
    return name + _record(0x000D, _sized(ref.libid.encode("cp1252")) + struct.pack("<IH", 0, 0))


def _module_record(module: Module) -> bytes:
    name = module.name.encode("cp1252")
    wide = module.name.encode("utf-16-le")
    return b"".join([
        _record(0x0019, name), _record(0x0047, wide),  # MODULENAME, MODULENAMEUNICODE
        _record(0x001A, name) + _record(0x0032, wide),  # MODULESTREAMNAME
        _record(0x001C, b"") + _record(0x0048, b""),  # MODULEDOCSTRING
        _record(0x0031, struct.pack("<I", 0)),  # MODULEOFFSET: the source starts the stream
        _record(0x001E, struct.pack("<I", 0)),  # MODULEHELPCONTEXT
        _record(0x002C, struct.pack("<H", 0xFFFF)),  # MODULECOOKIE
        _record(0x0022 if module.document else 0x0021, b""),  # MODULETYPE
        _record(0x002B, b""),  # terminator
    ])


def _record(record_id: int, data: bytes) -> bytes:
    return struct.pack("<HI", record_id, len(data)) + data


def _sized(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def project_stream(modules: Sequence[Module]) -> bytes:
    """The PROJECT stream (MS-OVBA 2.3.1): the project's properties as text."""
    lines = [f'ID="{PROJECT_ID}"']
    lines += [f"Document={m.name}/&H00000000" if m.document else f"Module={m.name}" for m in modules]
    lines += [f'Name="{PROJECT_NAME}"', 'HelpContextID="0"', 'VersionCompatible32="393222000"',
              f'CMG="{encrypt(PROJECT_ID, bytes(4)).hex().upper()}"',  # not protected
              f'DPB="{encrypt(PROJECT_ID, bytes(1)).hex().upper()}"',  # no password
              f'GC="{encrypt(PROJECT_ID, bytes([0xFF])).hex().upper()}"',  # visible
              "", "[Host Extender Info]", "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
              "", "[Workspace]"]
    lines += [f"{m.name}=0, 0, 0, 0, C" for m in modules]
    return (_NEWLINE.join(lines) + _NEWLINE).encode("cp1252")


def project_wm_stream(modules: Iterable[Module]) -> bytes:
    """PROJECTwm: each module's name in the code page and in UTF-16."""
    pairs = b"".join(m.name.encode("cp1252") + b"\0" + m.name.encode("utf-16-le") + b"\0\0" for m in modules)
    return pairs + b"\0\0"


# ----------------------------------------------------------------------------- data encryption
_SEED = 0x12  # any byte does; fixed so that a build is reproducible


def encrypt(project_id: str, data: bytes, seed: int = _SEED) -> bytes:
    """MS-OVBA 2.4.3.2 data encryption (an obfuscation keyed by the project id), as the CMG, DPB
    and GC properties carry it."""
    version = 2
    project_key = sum(project_id.encode("ascii")) & 0xFF
    out = bytearray([seed, seed ^ version, seed ^ project_key])
    plain1, enc1, enc2 = project_key, seed ^ project_key, seed ^ version
    ignored = bytes((seed & 6) // 2)
    for byte in ignored + struct.pack("<I", len(data)) + data:
        byte_enc = byte ^ ((enc2 + plain1) & 0xFF)
        out.append(byte_enc)
        enc2, enc1, plain1 = enc1, byte_enc, byte
    return bytes(out)


def decrypt(data: bytes) -> bytes:
    """The inverse of `encrypt` (for tests and for reading Excel's own values)."""
    seed, version_enc, key_enc = data[0], data[1], data[2]
    plain1, enc1, enc2 = seed ^ key_enc, key_enc, version_enc
    plain = bytearray()
    for byte_enc in data[3:]:
        byte = byte_enc ^ ((enc2 + plain1) & 0xFF)
        plain.append(byte)
        enc2, enc1, plain1 = enc1, byte_enc, byte
    ignored = (seed & 6) // 2
    length = struct.unpack_from("<I", plain, ignored)[0]
    return bytes(plain[ignored + 4: ignored + 4 + length])


# ----------------------------------------------------------------------------- compression
_CHUNK = 4096
_MAX_CANDIDATES = 256  # match positions tried per token: bounded time, still deterministic


def compress(data: bytes) -> bytes:
    """An MS-OVBA CompressedContainer (2.4.1): signature byte, then a chunk per 4096 bytes."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), _CHUNK):
        out += _compress_chunk(data[start:start + _CHUNK])
    return bytes(out)


def _compress_chunk(chunk: bytes) -> bytes:
    tokens = _tokens(chunk)
    if len(tokens) > _CHUNK:
        if len(chunk) < _CHUNK:  # a raw chunk is 4096 bytes: a shorter one would decompress padded
            raise ValueError("incompressible final chunk: cannot be stored raw without padding")
        return struct.pack("<H", 0x3000 | (_CHUNK - 1)) + chunk
    return struct.pack("<H", 0xB000 | (len(tokens) - 1)) + tokens


def _tokens(chunk: bytes) -> bytes:
    """The chunk's token sequences: a flag byte, then 8 tokens (a literal or a copy token)."""
    out = bytearray()
    seen: dict[bytes, list[int]] = {}
    pos = 0
    while pos < len(chunk):
        flag_at = len(out)
        out.append(0)
        for bit in range(8):
            if pos >= len(chunk):
                break
            offset, length = _longest_match(chunk, pos, seen)
            if length >= 3:
                out += struct.pack("<H", _copy_token(pos, offset, length))
                out[flag_at] |= 1 << bit
            else:
                out.append(chunk[pos])
                length = 1
            for p in range(pos, pos + length):
                seen.setdefault(chunk[p:p + 3], []).append(p)
            pos += length
    return bytes(out)


def _bit_count(pos: int) -> int:
    """Offset bits of a copy token at `pos` in the chunk (2.4.1.3.19.1 CopyToken Help)."""
    return max((pos - 1).bit_length(), 4)


def _longest_match(chunk: bytes, pos: int, seen: dict[bytes, list[int]]) -> tuple[int, int]:
    maximum = min((0xFFFF >> _bit_count(pos)) + 3, len(chunk) - pos)
    best_at, best = 0, 0
    for candidate in reversed(seen.get(chunk[pos:pos + 3], [])[-_MAX_CANDIDATES:]):
        length = 0
        while length < maximum and chunk[candidate + length] == chunk[pos + length]:
            length += 1
        if length > best:
            best_at, best = candidate, length
            if best == maximum:
                break
    return pos - best_at, best


def _copy_token(pos: int, offset: int, length: int) -> int:
    bits = _bit_count(pos)
    return ((offset - 1) << (16 - bits)) | (length - 3)
