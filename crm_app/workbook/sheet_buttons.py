"""Macro buttons on the Reallocation sheet: check, apply, suggest cuts, sign off.

Excel keeps a form button in the sheet's legacy VML drawing: a shape whose `<x:ClientData
ObjectType="Button">` names the macro in `<x:FmlaMacro>`. XlsxWriter writes that part as Excel
does (`insert_button`); openpyxl, which lays out the register, writes none, but when it rewrites a
macro workbook (keep_vba) it keeps a part named `xl/drawings/vmlDrawing<digit>.vml` and the
sheet's `<legacyDrawing>` link to it. So the drawing comes from a scratch sheet XlsxWriter writes
with the Reallocation sheet's column widths (the shapes' offsets then match their cell anchors),
and the builder adds it to the package; every later write of the workflow carries it over.
"""
from __future__ import annotations

import io
import zipfile
from typing import Mapping

import xlsxwriter

VML_PART = "xl/drawings/vmlDrawing1.vml"  # the name pattern openpyxl carries over (vmlDrawing\d.vml)
VML_TYPE = "application/vnd.openxmlformats-officedocument.vmlDrawing"
BUTTON_COLUMN = "O"  # right of the sign-off fields (L:M)
# (row, macro, caption): the macros of vba/Reallocation.bas and vba/Register.bas
BUTTONS = (
    (3, "CheckReallocation", "检查申请 Check request"),
    (5, "ApplyReallocation", "执行调整 Apply request"),
    (7, "SuggestReallocationCuts", "建议调减 Suggest cuts"),
    (9, "SignOff", "签字确认 Sign off"),
)
BUTTON_SIZE = {"width": 168, "height": 30}  # pixels


def buttons_vml(column_widths: Mapping[str, float]) -> bytes:
    """The VML drawing of the buttons, laid out over columns of these widths (characters)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for column, width in column_widths.items():
        sheet.set_column(f"{column}:{column}", width)
    for row, macro, caption in BUTTONS:
        sheet.insert_button(f"{BUTTON_COLUMN}{row}", {"macro": macro, "caption": caption, **BUTTON_SIZE})
    book.close()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as package:
        return package.read(VML_PART)


def sheet_widths(ws) -> dict[str, float]:
    """An openpyxl sheet's column widths that are set, by column letter."""
    return {letter: dim.width for letter, dim in ws.column_dimensions.items() if dim.width}
