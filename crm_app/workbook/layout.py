"""How the register's sheets look and print: two-line headers, notes, column widths, page setup.

The sheet builders write cells through `xml_sheet.Sheet`; this module sizes what they wrote. A
few looks have no `Sheet` method yet (a wrapped note, reading back the cells written to fit the
columns to them): `restyle` and `_cells` reach into the writer's cell lists for them, in this one
place, until `Sheet` has its own.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Iterable, Sequence

from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.worksheet.merge import MergedCellRange
from openpyxl.worksheet.properties import PageSetupProperties

from crm_app.workbook.xml_sheet import COUNT, DATE, LINE_POINTS, MONEY, PERCENT, SKIP, Sheet

# A header "中文 English" becomes two lines at the first space between its Chinese and English.
_SPLIT = re.compile(r"^(.*?[\u3000-\u9fff\uff00-\uffef)）\]])\s+(?=[A-Za-z#%0-9]|\([A-Za-z])")
MIN_WIDTH, MAX_WIDTH = 6.0, 60.0
SAMPLE_ROWS = 2000  # rows read to fit a column: a register's rows are alike, and it may have a million


def two_lines(text: str) -> str:
    """'净销售额 Net sales' -> '净销售额\\nNet sales'; text with a line break or no Chinese part as is."""
    if "\n" in text:
        return text
    m = _SPLIT.match(text)
    return f"{m.group(1)}\n{text[m.end():]}" if m else text


def header(sh: Sheet, row: int, first_col: int, labels: Sequence[str]) -> None:
    """A header row in two lines ("中文\\nEnglish"), its height showing every line."""
    shown = [two_lines(t) for t in labels]
    sh.header(row, first_col, shown)
    lines = max((t.count("\n") + 1 for t in shown), default=1)
    sh.height(row, lines * LINE_POINTS + 4)


def text_width(text: str) -> float:
    """Column width units a line of text needs: a CJK (wide) character takes two."""
    return sum(2.0 if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)


def shown_text(value: object, fmt: str | None) -> str:
    """The text a cell shows for `value` in number format `fmt` (as wide as Excel's, near enough)."""
    if value is None or value is SKIP or value == "":
        return ""
    if isinstance(value, bool):
        return "FALSE" if not value else "TRUE"
    if isinstance(value, (datetime, date)):
        return "0000-00-00"
    if isinstance(value, (int, float)):
        if fmt == MONEY:
            return f"{value:,.2f}"
        if fmt in (PERCENT, "0.00%"):
            return f"{value:.2%}"
        if fmt == "0%":
            return f"{value:.0%}"
        if fmt == COUNT:
            return f"{value:,.0f}"
        if fmt == DATE:
            return "0000-00-00"
        if fmt in ("0", "0.00"):
            return f"{value:.{2 if fmt == '0.00' else 0}f}"
        return f"{value:.10g}"  # General: up to 11 characters
    return str(value)


def _cells(sh: Sheet) -> Iterable[tuple[int, int, object, str | None, bool]]:
    """(row, column, shown value, number format, is a header) of the first SAMPLE_ROWS rows written."""
    for row in sorted(sh._rows)[:SAMPLE_ROWS]:
        for col, (_, kind, a, b, style) in sh._rows[row].items():
            value = a if kind == "v" else b
            yield row, col, value, style[0], style[1] == "head"


def fit_widths(sh: Sheet, least: dict[str, float] | None = None, fixed: dict[str, float] | None = None,
               skip: Iterable[int | str] = (), pad: float = 2.0, most: float = MAX_WIDTH) -> None:
    """Each column as wide as its widest cell (headers line by line), within [MIN_WIDTH, most]
    and at least `least` (an empty template's amount columns); `fixed` columns as given; rows
    (numbers) or cells ('M1') in `skip` not measured: titles and notes that run on to the right."""
    skip, widths = set(skip), {column_index_from_string(c): w - pad for c, w in (least or {}).items()}
    for row, col, value, fmt, _ in _cells(sh):
        if row in skip or (skip and f"{get_column_letter(col)}{row}" in skip):
            continue
        text = shown_text(value, fmt)
        need = max((text_width(line) for line in text.split("\n")), default=0.0)
        widths[col] = max(widths.get(col, 0.0), need)
    out = {get_column_letter(c): min(max(w + pad, MIN_WIDTH), most) for c, w in sorted(widths.items())}
    sh.widths({**out, **(fixed or {})})


def restyle(sh: Sheet, ref: str, font: str | None = None, align: str | None = None) -> None:
    """Give a written cell a font and an alignment (the `Sheet` style key's second and fourth parts)."""
    sh.style(ref)  # creates the cell if need be
    letters = ref.rstrip("0123456789")
    row = int(ref[len(letters):])
    cell = next(c for c in sh._rows[row].values() if c[0] == letters)
    fmt, old_font, fill, old_align, unlocked = cell[4]
    cell[4] = (fmt, font or old_font, fill, align or old_align, unlocked)


def note(sh: Sheet, ref: str, text: str, kind: str = "note", lines: int | None = None, wrap: bool = True) -> None:
    """A note in one cell, wrapped at the top (or, `wrap` False, running on into the empty cells to
    its right): kind 'note' (a warning, dark red), 'addin' (what the add-in computed and when) or
    'body' (plain text). `lines`: the row's height in lines (for a cell not wide enough for its
    text on one line); the row keeps its height otherwise."""
    sh.label(ref, text, note=True)
    restyle(sh, ref, font=kind, align="top" if wrap else None)
    if lines:
        letters = ref.rstrip("0123456789")
        sh.height(int(ref[len(letters):]), lines * LINE_POINTS + 2)


def merge(sh: Sheet, ref: str) -> None:
    """Merge the cells of `ref` (a note across a table's width). openpyxl's merge_cells makes cell
    objects it would write as rows, and `Sheet` writes this sheet's rows itself: only the merge
    is recorded here."""
    merged = MergedCellRange(sh.ws, ref)  # creates the top-left cell in openpyxl: dropped again
    sh.ws._cells.pop((merged.min_row, merged.min_col), None)
    sh.ws.merged_cells.add(merged)


def note_lines(text: str, width: float) -> int:
    """Lines a wrapped note of `text` takes in a cell `width` units wide."""
    total = 0
    for line in text.split("\n"):
        total += max(1, -int(-text_width(line) // max(width - 1, 1)))
    return total


# ----------------------------------------------------------------------------- printing
def print_setup(sh: Sheet, landscape: bool = False, title_rows: str | None = None, area: str | None = None,
                one_page: bool = False, footer: str = "") -> None:
    """Page setup: A4, fit to the page's width (and height with `one_page`), the header rows on
    every page, the sheet name, `footer` (the period, a note) and page x / y at the foot."""
    ws = sh.ws
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if one_page else 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top, ws.page_margins.bottom = 0.5, 0.6
    ws.page_margins.header, ws.page_margins.footer = 0.2, 0.25
    ws.print_options.horizontalCentered = one_page
    if title_rows:
        ws.print_title_rows = title_rows
    if area:
        ws.print_area = area
    ws.oddFooter.left.text = "&A"
    ws.oddFooter.center.text = _footer_text(footer)
    ws.oddFooter.right.text = "&P / &N"
    for part in (ws.oddFooter.left, ws.oddFooter.center, ws.oddFooter.right):
        part.size = 8


def _footer_text(text: str) -> str:
    """Footer text with '&' doubled (a lone '&' starts a header/footer code)."""
    return text.replace("&", "&&")
