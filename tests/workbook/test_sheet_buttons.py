"""The Reallocation sheet's macro buttons: a VML drawing as XlsxWriter writes it for Excel, each
button naming a macro of the embedded project; LibreOffice binds them to that project's macros,
and a workflow write keeps them (tests/workbook/test_stored_values.py checks a reallocation)."""
from __future__ import annotations

import io
import re
import subprocess
import zipfile
from xml.etree import ElementTree as ET

import openpyxl

from crm_app.register import schema as rs
from crm_app.workbook import sheet_buttons
from crm_app.workbook.builder import TEMPLATE_NAME, WORKBOOKS_DIR, build_workbook
from crm_app.workbook.package import save_book, sheet_parts
from tests.workbook.test_ribbon import project_subs

TEMPLATE = WORKBOOKS_DIR / TEMPLATE_NAME
X = "{urn:schemas-microsoft-com:office:excel}"


def package(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def buttons(files: dict[str, bytes]) -> list[tuple[str, str, str]]:
    """(caption, macro, anchor column) of every button on the Reallocation sheet, through its
    <legacyDrawing> relationship."""
    part = sheet_parts(files)[rs.REALLOCATION]
    (rel_id,) = re.findall(rb'<legacyDrawing[^>]*r:id="([^"]+)"', files[part])
    rels = ET.fromstring(files[part.replace("worksheets/", "worksheets/_rels/") + ".rels"])
    (target,) = [r.get("Target") for r in rels if r.get("Id") == rel_id.decode()]
    vml = ET.fromstring(files[target.lstrip("/")])
    found = []
    for shape in vml.iter("{urn:schemas-microsoft-com:vml}shape"):
        data = shape.find(f"{X}ClientData")
        if data is None or data.get("ObjectType") != "Button":
            continue
        caption = "".join(shape.find("{urn:schemas-microsoft-com:vml}textbox").itertext()).strip()
        column = int(data.findtext(f"{X}Anchor").split(",")[0])
        found.append((caption, data.findtext(f"{X}FmlaMacro"), openpyxl.utils.get_column_letter(column + 1)))
    return found


def test_the_template_has_a_bilingual_button_for_each_macro_of_the_form():
    found = buttons(package(TEMPLATE.read_bytes()))
    assert [(caption, macro) for caption, macro, _ in found] == [
        (caption, f"[0]!{macro}") for _, macro, caption in sheet_buttons.BUTTONS]
    known = project_subs()
    for caption, macro, column in found:
        name = macro.removeprefix("[0]!")
        assert known[name][0] == "", name  # a macro of the embedded project, without arguments
        assert re.search(r"[\u4e00-\u9fff]", caption) and re.search(r"[A-Za-z]", caption)
        assert column == sheet_buttons.BUTTON_COLUMN


def test_the_buttons_sit_right_of_the_forms_cells():
    """Beside the request form and the sign-off fields, over no input cell."""
    book = openpyxl.load_workbook(TEMPLATE)
    ws = book[rs.REALLOCATION]
    used = max(c.column for row in ws.iter_rows() for c in row if c.value is not None)
    assert openpyxl.utils.column_index_from_string(sheet_buttons.BUTTON_COLUMN) > used


def test_the_drawing_survives_an_openpyxl_rewrite(tmp_path):
    """The workflow's write path (openpyxl keep_vba, then save_book) carries the drawing over."""
    book = openpyxl.load_workbook(TEMPLATE, keep_vba=True)
    save_book(book, tmp_path / "rewritten.xlsm")
    before, after = package(TEMPLATE.read_bytes()), package((tmp_path / "rewritten.xlsm").read_bytes())
    assert buttons(after) == buttons(before)
    assert b'Extension="vml"' in after["[Content_Types].xml"]


def test_a_workbook_without_macros_has_no_buttons():
    files = package(build_workbook(macros=False))
    assert not any(name.endswith(".vml") for name in files)
    assert b"<legacyDrawing" not in files[sheet_parts(files)[rs.REALLOCATION]]


def test_libreoffice_binds_each_button_to_the_embedded_macro(tmp_path, soffice):
    subprocess.run([soffice, "--headless", "--convert-to", "ods", "--outdir", str(tmp_path), str(TEMPLATE)],
                   check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(tmp_path / TEMPLATE.with_suffix(".ods").name) as z:
        content = z.read("content.xml").decode("utf-8")
    labels = re.findall(r'<form:button [^>]*form:label="([^"]+)"', content)
    bound = re.findall(r'vnd\.sun\.star\.script:VBAProject\.(\w+)\.(\w+)\?language=Basic', content)
    assert labels == [caption for *_, caption in sheet_buttons.BUTTONS]
    assert [macro for _, macro in bound] == [macro for _, macro, _ in sheet_buttons.BUTTONS]
    assert {module for module, _ in bound} == {"Reallocation"}
