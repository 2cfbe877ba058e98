"""The register's embedded VBA project: built from vba/*.bas, read back exactly by olevba, source
only (MS-OVBA's form for a project written without Office), reproducible, and current.

Excel itself is not available here: these checks and LibreOffice running the macros
(test_macros_in_libreoffice) stand in for it.
"""
from __future__ import annotations

import io
import re
import struct
import zipfile
from pathlib import Path

import olefile
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_app.workbook import vba_project as vp
from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR, quickstart_template
from crm_app.workbook.cfb import Storage, compound_file

olevba = pytest.importorskip("oletools.olevba")

TEMPLATE = WORKBOOKS_DIR / TEMPLATE_NAME
VBA_SOURCES = Path(__file__).resolve().parents[2] / "vba"


def vba_bin(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("xl/vbaProject.bin")


def olevba_modules(path: Path) -> dict[str, str]:
    """Module name -> source, as oletools decompresses it from the file."""
    parser = olevba.VBA_Parser(str(path))
    try:
        return {name.rsplit(".", 1)[0]: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def code_names(path: Path) -> list[str]:
    wb = openpyxl.load_workbook(path, keep_vba=True)
    return [ws.sheet_properties.codeName for ws in wb.worksheets]


def dir_records(project: bytes) -> list[tuple[int, bytes]]:
    """The decompressed dir stream as (record id, data); PROJECTVERSION's Reserved field is 4
    whatever follows (MS-OVBA 2.3.4.2.1.11), so its 6 bytes are read as data."""
    with olefile.OleFileIO(io.BytesIO(project)) as ole:
        data = bytes(olevba.decompress_stream(bytearray(ole.openstream("VBA/dir").read())))
    records, at = [], 0
    while at < len(data):
        record_id, size = struct.unpack_from("<HI", data, at)
        size = 6 if record_id == 0x0009 else size
        records.append((record_id, data[at + 6: at + 6 + size]))
        at += 6 + size
    return records


# ----------------------------------------------------------------------------- the template
def test_olevba_reads_back_exactly_the_committed_source_of_every_module():
    modules = olevba_modules(TEMPLATE)
    for path in sorted(VBA_SOURCES.glob("*.bas")):
        name = re.match(r'Attribute VB_Name = "(\w+)"', path.read_text(encoding="ascii")).group(1)
        assert modules.pop(name) == path.read_bytes().decode("ascii"), path.name  # byte for byte, CRLF included
    assert sorted(modules) == sorted(["ThisWorkbook", *code_names(TEMPLATE)])  # the rest: document modules
    assert modules["ThisWorkbook"].startswith('Attribute VB_Name = "ThisWorkbook"\r\nAttribute VB_Base = "0{00020819-')
    assert all("\r\nSub " not in code and "Function " not in code for code in modules.values())  # attributes only


def test_embedded_project_is_the_one_vba_sources_build():
    """Golden: fails when a vba/*.bas changed and `crm-addin build-workbooks` was not run."""
    built = vp.vba_project_bin(vp.register_modules(code_names(TEMPLATE), VBA_SOURCES))
    assert vba_bin(TEMPLATE) == built, "workbooks/crm_register.xlsm is stale: run crm-addin build-workbooks"


def test_every_sheet_has_a_document_module_under_its_code_name():
    names = code_names(TEMPLATE)
    assert len(set(names)) == len(names) and all(names)
    assert names[0] == "shDashboard" and "shRegister" in names and names[-1] == "shXlwingsConf"
    with zipfile.ZipFile(TEMPLATE) as z:
        assert 'codeName="ThisWorkbook"' in z.read("xl/workbook.xml").decode()
    with olefile.OleFileIO(io.BytesIO(vba_bin(TEMPLATE))) as ole:
        project = ole.openstream("PROJECT").read().decode("cp1252")
    documents = re.findall(r"^Document=(\w+)/&H00000000\r$", project, re.M)
    assert documents == ["ThisWorkbook", *names]
    assert re.findall(r"^Module=(\w+)\r$", project, re.M) == ["Reallocation", "Register", "Ribbon", "xlwings_udfs"]


def test_the_udf_module_is_the_workbook_variant():
    """xlwings' generator writes ThisWorkbook for a workbook's own module (ActiveWorkbook is the add-in's)."""
    code = olevba_modules(TEMPLATE)["xlwings_udfs"]
    assert "ThisWorkbook, Application.Caller)" in code and "ActiveWorkbook" not in code


# ----------------------------------------------------------------------------- MS-OVBA form
def test_project_carries_no_compiled_code():
    project = vba_bin(TEMPLATE)
    with olefile.OleFileIO(io.BytesIO(project)) as ole:
        assert ole.openstream("VBA/_VBA_PROJECT").read() == bytes.fromhex("cc61ffff000000")  # Version 0xFFFF, no cache
        streams = {"/".join(e) for e in ole.listdir()}
    offsets = [data for record_id, data in dir_records(project) if record_id == 0x0031]
    assert offsets and set(offsets) == {struct.pack("<I", 0)}  # MODULEOFFSET 0: each stream is source only
    module_streams = [data.decode() for record_id, data in dir_records(project) if record_id == 0x001A]
    assert {f"VBA/{m}" for m in module_streams} | {"PROJECT", "PROJECTwm", "VBA/dir", "VBA/_VBA_PROJECT"} == streams


def test_xlwings_reference_is_the_quickstarts():
    def references(project: bytes) -> dict[bytes, tuple[int, bytes]]:
        records = dir_records(project)
        named = {}
        for i, (record_id, data) in enumerate(records):
            if record_id == 0x0016:
                named[data] = records[i + 2]  # name, unicode name, then the reference itself
        return named

    ours, theirs = references(vba_bin(TEMPLATE)), references(vba_bin(quickstart_template()))
    assert ours[b"xlwings"] == theirs[b"xlwings"] and ours[b"xlwings"][0] == 0x000E  # a project reference
    assert ours[b"Office"] == theirs[b"Office"]  # declares IRibbonControl for the ribbon callbacks
    assert set(ours) == {b"xlwings", b"Office"}


def test_build_is_reproducible_and_the_compound_file_is_well_formed():
    modules = vp.register_modules(["shDashboard", "shRegister", "shXlwingsConf"], VBA_SOURCES)
    first, second = vp.vba_project_bin(modules), vp.vba_project_bin(modules)
    assert first == second
    with olefile.OleFileIO(io.BytesIO(first), raise_defects=olefile.DEFECT_INCORRECT) as ole:
        assert ole.openstream("VBA/Ribbon").read() == vp.compress(modules[-2].source.encode("ascii"))


def test_protection_properties_decrypt_to_unprotected_visible_no_password():
    with olefile.OleFileIO(io.BytesIO(vba_bin(TEMPLATE))) as ole:
        project = dict(re.findall(r'^(CMG|DPB|GC)="([0-9A-F]+)"\r$', ole.openstream("PROJECT").read().decode(), re.M))
    assert vp.decrypt(bytes.fromhex(project["CMG"])) == bytes(4)
    assert vp.decrypt(bytes.fromhex(project["DPB"])) == b"\0"
    assert vp.decrypt(bytes.fromhex(project["GC"])) == b"\xff"


def test_decrypt_reads_the_values_excel_wrote():
    """The quickstart's PROJECT stream, as Excel wrote it."""
    assert vp.decrypt(bytes.fromhex("A7A58C2B7CDD73E173E173E173E1")) == bytes(4)
    assert vp.decrypt(bytes.fromhex("9D9FB6314A2D4B2D4BD2")) == b"\xff"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=9000) | st.text("ab Sub\r\n", max_size=12000).map(str.encode),
       st.integers(0, 255), st.text("0123456789ABCDEF{}-", min_size=1, max_size=38))
def test_compression_and_encryption_round_trip(data, seed, project_id):
    try:
        compressed = vp.compress(data)
    except ValueError:  # an incompressible last chunk of 3.6-4 KB (random bytes, never source text)
        assert len(data) % 4096 > 3600
    else:
        assert bytes(olevba.decompress_stream(bytearray(compressed))) == data
    assert vp.decrypt(vp.encrypt(project_id, data[:100], seed)) == data[:100]


def test_source_text_compresses():
    text = (VBA_SOURCES / "xlwings_udfs.bas").read_bytes()
    assert len(vp.compress(text)) < len(text) / 3  # copy tokens are used, not only literals


# ----------------------------------------------------------------------------- refused input
def test_a_non_ascii_or_unnamed_bas_file_is_refused(tmp_path):
    (tmp_path / "Bad.bas").write_bytes('Attribute VB_Name = "Bad"\r\n\' 客户\r\n'.encode("utf-8"))
    with pytest.raises(UnicodeDecodeError):
        vp.source_modules(tmp_path)
    (tmp_path / "Bad.bas").write_bytes(b"Sub X()\r\nEnd Sub\r\n")
    with pytest.raises(ValueError, match="VB_Name"):
        vp.source_modules(tmp_path)


def test_a_sheet_code_name_equal_to_a_module_name_is_refused():
    with pytest.raises(ValueError, match="register"):
        vp.register_modules(["shDashboard", "Register"], VBA_SOURCES)


def test_compound_file_holds_large_and_small_streams():
    big, small = bytes(range(256)) * 40, b"x" * 100
    data = compound_file(Storage("", {"big": big}, [Storage("VBA", {f"m{i}": small * i for i in range(1, 30)})]))
    with olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT) as ole:
        assert ole.openstream("big").read() == big
        assert [ole.openstream(f"VBA/m{i}").read() for i in range(1, 30)] == [small * i for i in range(1, 30)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 8, 15, 16, 29])
def test_compound_file_directory_trees_are_red_black_in_name_order(count):
    """MS-CFB 2.6.4: siblings form a red-black tree ordered by name length, then upper-cased name."""
    names = [f"M{'x' * (i % 5)}{i}" for i in range(count)]
    data = compound_file(Storage("", {n: b"v" for n in names}))
    directory_at = (struct.unpack_from("<I", data, 48)[0] + 1) * 512
    entries = [struct.unpack_from("<64sHBBIII", data, directory_at + 128 * i) for i in range(count + 1)]

    def walk(node: int, depth_black: int) -> tuple[list[str], set[int]]:
        if node == 0xFFFFFFFF:
            return [], {depth_black}
        raw, size, _, colour, left, right, _ = entries[node]
        if colour == 0:  # red: its children are black
            assert all(c == 0xFFFFFFFF or entries[c][3] == 1 for c in (left, right))
        black = depth_black + (colour == 1)
        left_names, left_heights = walk(left, black)
        right_names, right_heights = walk(right, black)
        return [*left_names, raw[:size - 2].decode("utf-16-le"), *right_names], left_heights | right_heights

    ordered, black_heights = walk(entries[0][6], 0)
    assert ordered == sorted(names, key=lambda n: (len(n), n.upper()))
    assert len(black_heights) == 1  # every path from the root has as many black nodes
    assert entries[entries[0][6]][3] == 1  # the root is black
